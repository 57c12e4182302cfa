"""Streaming transfer into a `.part` file with size and checksum verified on the fly.

HTTP(S) downloads resume an existing `.part` with a Range request (after a dropped connection within one fetch,
and across runs after an interrupted one) and retry transient failures (timeouts, dropped connections, HTTP 5xx,
408/429) with exponential backoff. Local files (file:// URLs, folder mirrors) are copied through the same hasher.
The caller renames the `.part` into place; on a size or checksum mismatch the `.part` is deleted here.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from edgezoo import __version__
from edgezoo.errors import (ChecksumMismatchError, FetchError, NetworkError, SizeMismatchError,
                            SourceNotFoundError)
from edgezoo.fetch.verify import CHUNK, Digest, Expected, StreamHasher, check, check_size_so_far, hash_file
from edgezoo.progress import ProgressBar, step

_TRANSIENT_STATUS = {408, 425, 429}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # total tries of one URL (the first one included)
    backoff: float = 1.0  # seconds before the 2nd try; doubles after each failure
    max_backoff: float = 30.0
    timeout: float = 30.0  # seconds without any byte before a connection counts as dropped

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        """Defaults, overridable by EDGEZOO_FETCH_{ATTEMPTS,BACKOFF,TIMEOUT} (tests use a short backoff)."""
        default = cls()
        try:
            return cls(attempts=max(1, int(os.environ.get("EDGEZOO_FETCH_ATTEMPTS", default.attempts))),
                       backoff=float(os.environ.get("EDGEZOO_FETCH_BACKOFF", default.backoff)),
                       timeout=float(os.environ.get("EDGEZOO_FETCH_TIMEOUT", default.timeout)))
        except ValueError:
            raise FetchError("EDGEZOO_FETCH_ATTEMPTS/BACKOFF/TIMEOUT must be numbers") from None

    def delay(self, failures: int) -> float:
        return min(self.backoff * 2 ** (failures - 1), self.max_backoff)


class _Transient(Exception):
    """A failure worth retrying (the message says what happened)."""


class _Restart(Exception):
    """The server cannot resume: start again from byte 0 (does not count as a failure)."""


@dataclass
class _State:
    """The .part file and the hash of the bytes in it, always in step."""

    out: BinaryIO
    hasher: StreamHasher
    expected: Expected

    @property
    def offset(self) -> int:
        return self.hasher.size

    def reset(self) -> None:
        self.out.seek(0)
        self.out.truncate()
        self.hasher = StreamHasher(self.expected.checksum)

    def write(self, data: memoryview, what: str) -> None:
        try:
            self.out.write(data)
        except OSError as exc:
            raise FetchError(f"{what}: cannot write {self.out.name}: {exc.strerror}",
                             hint="free disk space or set EDGEZOO_CACHE to another folder") from None
        self.hasher.update(data)


def download(url: str, part: Path, expected: Expected, what: str, *, policy: RetryPolicy | None = None,
             progress: bool = True, label: str = "") -> Digest:
    """Stream `url` into `part` (resuming it if present); return the digest of the verified bytes."""
    policy = policy or RetryPolicy.from_env()
    hasher = _resume_hasher(part, expected)
    if hasher is None:  # a .part of the full size from an earlier run: use it if it verifies
        digest = hash_file(part, expected.checksum)
        try:
            check(digest, expected, what)
            return digest
        except (SizeMismatchError, ChecksumMismatchError):
            part.unlink()
            hasher = StreamHasher(expected.checksum)
    bar = ProgressBar(label or part.name.removesuffix(".part"), expected.size, enabled=progress)
    bar.done = hasher.size
    failed = True
    try:
        with part.open("ab") as out:
            state = _State(out, hasher, expected)
            _transfer_with_retries(url, state, what, policy, bar)
            digest = state.hasher.digest()
        failed = False
    except (SizeMismatchError, ChecksumMismatchError):
        part.unlink(missing_ok=True)
        raise
    finally:
        bar.close(failed=failed)
    _verify_or_discard(digest, expected, part, what)
    return digest


def copy_local(src: Path, part: Path, expected: Expected, what: str, *, progress: bool = True,
               label: str = "") -> Digest:
    """Copy a local file into `part` through the hasher (a folder mirror or a file:// URL)."""
    if not src.is_file():
        raise SourceNotFoundError(f"{what}: no file {src}")
    bar = ProgressBar(label or src.name, expected.size, enabled=progress)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    failed = True
    try:
        with src.open("rb") as fh, part.open("wb") as out:
            state = _State(out, StreamHasher(expected.checksum), expected)
            while n := fh.readinto(buf):
                state.write(view[:n], what)
                check_size_so_far(state.offset, expected, what)
                bar.update(n)
            digest = state.hasher.digest()
        failed = False
    except (SizeMismatchError, FetchError):
        part.unlink(missing_ok=True)
        raise
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise FetchError(f"{what}: cannot read {src}: {exc.strerror}") from None
    finally:
        bar.close(failed=failed)
    _verify_or_discard(digest, expected, part, what)
    return digest


def _verify_or_discard(digest: Digest, expected: Expected, part: Path, what: str) -> None:
    try:
        check(digest, expected, what)
    except (SizeMismatchError, ChecksumMismatchError):
        part.unlink(missing_ok=True)  # bad bytes never stay in the cache
        raise


def _resume_hasher(part: Path, expected: Expected) -> StreamHasher | None:
    """A hasher primed with the bytes already in `part`; None when `part` is already the complete file."""
    hasher = StreamHasher(expected.checksum)
    if not part.exists() or part.stat().st_size == 0:
        return hasher
    have = part.stat().st_size
    if expected.size is not None and have > expected.size:
        part.unlink()
        return hasher
    hash_file(part, expected.checksum, hasher)
    if expected.size is not None and have == expected.size:
        return None
    step(f"resuming {part.name.removesuffix('.part')} at {have:,} bytes")
    return hasher


def _transfer_with_retries(url: str, state: _State, what: str, policy: RetryPolicy, bar: ProgressBar) -> None:
    failures = 0
    restarts = 0
    while True:
        try:
            _one_request(url, state, what, policy, bar)
            return
        except _Restart as exc:
            restarts += 1
            if restarts > 2:
                raise NetworkError(f"{what}: {url}: {exc}", hint="the server keeps refusing to resume") from None
            state.reset()
            bar.done = 0
        except _Transient as exc:
            failures += 1
            if failures >= policy.attempts:
                raise NetworkError(f"{what}: download from {url} failed after {failures} attempts: {exc}",
                                   hint="check the network/proxy; a partial download is kept and resumed "
                                        "next time; or fetch the file elsewhere and use --mirror DIR") from None
            delay = policy.delay(failures)
            step(f"{bar.label}: {exc}; retry {failures}/{policy.attempts - 1} in {delay:.2g} s"
                 + (f", resuming at {state.offset:,} bytes" if state.offset else ""))
            time.sleep(delay)


def _open(url: str, offset: int, what: str, policy: RetryPolicy) -> http.client.HTTPResponse:
    headers = {"User-Agent": f"edgezoo/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=policy.timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            raise _Restart("the server cannot resume (HTTP 416)") from None
        if exc.code in _TRANSIENT_STATUS or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason} from {url}") from None
        if exc.code in (404, 410):
            raise SourceNotFoundError(f"{what}: {url}: HTTP {exc.code} {exc.reason}") from None
        raise NetworkError(f"{what}: {url}: HTTP {exc.code} {exc.reason}",
                           hint="the server refused the request; try a mirror (--mirror)") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, socket.gaierror):  # no DNS: retrying will not help, say so at once
            raise NetworkError(f"{what}: cannot resolve the host of {url} ({reason.strerror})",
                               hint="no network? fetch the file elsewhere and use --mirror DIR") from None
        raise _Transient(f"cannot connect to {url}: {getattr(reason, 'strerror', None) or reason}") from None
    except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
        raise _Transient(f"connection to {url} failed: {exc or type(exc).__name__}") from None


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _one_request(url: str, state: _State, what: str, policy: RetryPolicy, bar: ProgressBar) -> None:
    offset = state.offset
    resp = _open(url, offset, what, policy)
    with resp:
        length_header = resp.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        if offset and resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                raise _Restart("the server answered a different range than asked")
            total = m.group(3)
            if total.isdigit() and state.expected.size is not None and int(total) != state.expected.size:
                raise SizeMismatchError(f"{what}: size mismatch: expected {state.expected.size:,} bytes, "
                                        f"the server has {int(total):,} ({url})", hint="the partial download "
                                        "was discarded; the card or the server copy is wrong")
        elif offset:  # 200: the server ignored Range and sends the whole file
            state.reset()
            bar.done = 0
            offset = 0
        if offset == 0 and length is not None and state.expected.size is not None and length != state.expected.size:
            raise SizeMismatchError(f"{what}: size mismatch: expected {state.expected.size:,} bytes, "
                                    f"the server announces {length:,} ({url})",
                                    hint="nothing was downloaded; the card or the server copy is wrong")
        received = 0
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            try:
                n = resp.readinto(buf)
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                raise _Transient(f"connection dropped after {state.offset:,} bytes "
                                 f"({exc or type(exc).__name__})") from None
            if not n:
                break
            state.write(view[:n], what)
            received += n
            bar.update(n)
            check_size_so_far(state.offset, state.expected, what)
        if length is not None and received < length:
            raise _Transient(f"connection dropped after {state.offset:,} bytes")
