"""Streaming transfer into a `.part` file with size and checksum verified on the fly.

HTTP(S) downloads resume an existing `.part` with a Range request (after a dropped connection within one fetch,
and across runs after an interrupted one) and retry transient failures (timeouts, stalls, dropped connections,
HTTP 5xx, 408/429) with exponential backoff, within the limits of `policy.RetryPolicy`. Local files (file:// URLs,
folder mirrors) are copied through the same hasher. The caller renames the `.part` into place; on a size or
checksum mismatch the `.part` is deleted here; on a full disk it is kept (the next fetch resumes it) and the error
says where it is and how big.

A transfer only ends successfully when its end is proven, because a file without a published checksum is trusted
on first use: a Content-Length (or Content-Range) fully received, a chunked body's terminator (http.client raises
IncompleteRead on a cut one), or, for a body that simply ends when the connection closes, the server's answer to a
Range request from the byte where it ended (416 "nothing there" = complete; 206 = it was cut: resume). A server
that supports neither lengths nor ranges must send the same bytes twice in a row.
"""

from __future__ import annotations

import http.client
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import BinaryIO

from edgezoo import __version__
from edgezoo.core.errors import (ChecksumMismatchError, DiskFullError, FetchError, NetworkError, SizeMismatchError,
                            SourceNotFoundError, disk_full, is_disk_full)
from edgezoo.core.progress import ProgressBar, step
from edgezoo.fetch.cache import open_for_writing, refuse_link
from edgezoo.fetch.policy import RetryPolicy, TransientFailure, Watchdog, seconds
from edgezoo.fetch.verify import CHUNK, Digest, Expected, StreamHasher, check, check_size_so_far, hash_file

__all__ = ["RetryPolicy", "copy_local", "download"]

_TRANSIENT_STATUS = {408, 425, 429}


class _Restart(Exception):
    """The server cannot resume: start again from byte 0 (does not count as a failure)."""


class _End(Enum):
    """How a response body ended."""

    PROVEN = "proven"  # its length was reached, a chunked terminator came, or the server confirmed the end
    CLOSED = "closed"  # the connection closed: the whole file, or cut short; this connection cannot tell


@dataclass
class _State:
    """The .part file and the hash of the bytes in it, always in step."""

    out: BinaryIO  # unbuffered: after a failed write the file holds exactly what reached the disk
    hasher: StreamHasher
    expected: Expected

    @property
    def offset(self) -> int:
        return self.hasher.size

    def reset(self) -> None:
        self.out.seek(0)
        self.out.truncate()
        self.hasher = StreamHasher(self.expected.checksum)

    def write(self, data: bytes | memoryview, what: str) -> None:
        try:
            _write_all(self.out, data)
        except OSError as exc:
            raise _write_error(exc, Path(self.out.name), what) from None
        self.hasher.update(data)


def _write_all(out: BinaryIO, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:  # a raw file may write less than asked (e.g. just before the disk is full)
        view = view[out.write(view):]


def _write_error(exc: OSError, part: Path, what: str) -> FetchError | DiskFullError:
    if is_disk_full(exc):
        return disk_full(exc, part.parent, f"writing {part.name}").with_context(what)
    return FetchError(f"{what}: cannot write {part}: {exc.strerror}",
                      hint="check the permissions of that folder, or set EDGEZOO_CACHE to another folder")


def _refuse_link(part: Path, what: str) -> None:
    try:
        refuse_link(part)
    except FetchError as exc:
        raise exc.with_context(what) from None


def _open_part(part: Path, mode: str, what: str) -> BinaryIO:
    try:
        return open_for_writing(part, append=mode == "ab")  # never through a link
    except FetchError as exc:
        raise exc.with_context(what) from None
    except OSError as exc:
        raise _write_error(exc, part, what) from None


def download(url: str, part: Path, expected: Expected, what: str, *, policy: RetryPolicy | None = None,
             progress: bool = True, label: str = "") -> Digest:
    """Stream `url` into `part` (resuming it if present); return the digest of the verified bytes."""
    policy = policy or RetryPolicy.from_env()
    _refuse_link(part, what)  # its bytes would be resumed (read) before anything is written
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
        with _open_part(part, "ab", what) as out:
            state = _State(out, hasher, expected)
            _transfer_with_retries(url, state, what, policy, bar)
            digest = state.hasher.digest()
        failed = False
    except (SizeMismatchError, ChecksumMismatchError):
        part.unlink(missing_ok=True)
        raise
    except DiskFullError as exc:  # keep the .part: it is a verified prefix, resumed once there is room
        have = part.stat().st_size if part.exists() else 0
        bar.done = have  # the failed write may have stored part of its block: report what is on disk
        exc.hint = (f"the partial download {part} ({have:,} bytes) is kept and the next fetch resumes from it "
                    f"(delete it to give up and free its space); {exc.hint} (EDGEZOO_CACHE)")
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
    _refuse_link(part, what)
    bar = ProgressBar(label or src.name, expected.size, enabled=progress)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    failed = True
    try:
        with src.open("rb") as fh, _open_part(part, "wb", what) as out:
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
    except DiskFullError as exc:  # a local copy is quick to redo: free the space now
        part.unlink(missing_ok=True)
        exc.hint = f"the partial copy {part} was removed; {exc.hint} (EDGEZOO_CACHE)"
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
    watchdog = Watchdog(policy)
    failures = restarts = 0
    confirm = False  # the next request asks for the bytes after a body that ended with the connection
    closed_body: tuple[int, str] | None = None  # (size, sha256) of the last such body read from byte 0
    while True:
        watchdog.attempt()
        try:
            end = _one_request(url, state, what, watchdog, bar, confirm=confirm)
            if end is _End.PROVEN or (state.expected.size is not None and state.offset == state.expected.size):
                return
            body = (state.offset, state.hasher.digest().sha256)
            if body == closed_body:  # no lengths, no ranges: the same bytes twice in a row is the best proof
                return
            if closed_body is not None:
                closed_body = body
                raise TransientFailure(f"the server sends no length and ignores Range, and two downloads "
                                       f"differ ({body[0]:,} bytes this time): a cut connection cannot be told "
                                       f"from the end of the file")
            closed_body, confirm = body, True
            step(f"{bar.label}: the connection closed after {state.offset:,} bytes of unknown total; "
                 "asking the server whether that is the end")
        except _Restart as exc:
            restarts += 1
            if restarts > 2:
                raise NetworkError(f"{what}: {url}: {exc}", hint="the server keeps refusing to resume") from None
            state.reset()
            bar.done = 0
            closed_body = None
        except TransientFailure as exc:
            failures += 1
            _give_up_or_wait(url, state, what, policy, bar, watchdog, failures, exc)


def _give_up_or_wait(url: str, state: _State, what: str, policy: RetryPolicy, bar: ProgressBar,
                     watchdog: Watchdog, failures: int, exc: TransientFailure) -> None:
    hint = ("check the network/proxy; a partial download is kept and resumed next time; or fetch the file "
            "elsewhere and use --mirror DIR")
    if failures >= policy.attempts:
        raise NetworkError(f"{what}: download from {url} failed after {failures} attempts over "
                           f"{seconds(watchdog.elapsed)}: {exc}", hint=hint)
    delay = policy.delay(failures)
    if watchdog.budget_left() <= delay:  # no time left for another useful try
        raise NetworkError(f"{what}: download from {url} gave up after {seconds(watchdog.idle)} without progress "
                           f"({failures} attempts over {seconds(watchdog.elapsed)}; retry budget "
                           f"{seconds(policy.retry_budget)}, EDGEZOO_FETCH_RETRY_BUDGET); last try: {exc}",
                           hint=hint)
    step(f"{bar.label}: {exc}; retry {failures}/{policy.attempts - 1} in {delay:.2g} s"
         + (f", resuming at {state.offset:,} bytes" if state.offset else ""))
    time.sleep(delay)


class _Unsatisfiable(Exception):
    """HTTP 416 to a Range request; `total` is the size the server gave in Content-Range, if any."""

    def __init__(self, total: int | None) -> None:
        super().__init__(total)
        self.total = total


def _open(url: str, range_from: int | None, what: str, wait: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": f"edgezoo/{__version__}", "Accept-Encoding": "identity"}
    if range_from is not None:
        headers["Range"] = f"bytes={range_from}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=wait)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and range_from is not None:
            m = _UNSATISFIED_RANGE.match(exc.headers.get("Content-Range", "") if exc.headers else "")
            raise _Unsatisfiable(int(m.group(1)) if m else None) from None
        if exc.code in _TRANSIENT_STATUS or exc.code >= 500:
            raise TransientFailure(f"HTTP {exc.code} {exc.reason} from {url}") from None
        if exc.code in (404, 410):
            raise SourceNotFoundError(f"{what}: {url}: HTTP {exc.code} {exc.reason}") from None
        raise NetworkError(f"{what}: {url}: HTTP {exc.code} {exc.reason}",
                           hint="the server refused the request; try a mirror (--mirror)") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, socket.gaierror):  # no DNS: retrying will not help, say so at once
            raise NetworkError(f"{what}: cannot resolve the host of {url} ({reason.strerror})",
                               hint="no network? fetch the file elsewhere and use --mirror DIR") from None
        if isinstance(reason, TimeoutError):
            raise TransientFailure(f"no answer from {url} within {seconds(wait)}") from None
        raise TransientFailure(f"cannot connect to {url}: {getattr(reason, 'strerror', None) or reason}") from None
    except TimeoutError:
        raise TransientFailure(f"no answer from {url} within {seconds(wait)}") from None
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise TransientFailure(f"connection to {url} failed: {exc or type(exc).__name__}") from None


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


def _one_request(url: str, state: _State, what: str, watchdog: Watchdog, bar: ProgressBar, *,
                 confirm: bool) -> _End:
    """One GET from `state.offset` (with `confirm`, a Range request even from 0); how its body ended."""
    offset = state.offset
    try:
        resp = _open(url, offset if (offset or confirm) else None, what, watchdog.wait_limit())
    except _Unsatisfiable as exc:  # nothing after `offset`: the end, if the server's total agrees
        if exc.total == offset or (exc.total is None and confirm):
            return _End.PROVEN
        raise _Restart(f"the server cannot resume at byte {offset:,} (HTTP 416)") from None
    with resp:
        length_header = resp.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        if resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                raise _Restart("the server answered a different range than asked")
            total = m.group(3)
            if total.isdigit() and state.expected.size is not None and int(total) != state.expected.size:
                raise SizeMismatchError(f"{what}: size mismatch: expected {state.expected.size:,} bytes, "
                                        f"the server has {int(total):,} ({url})", hint="the partial download "
                                        "was discarded; the card or the server copy is wrong")
            if length is None:
                length = int(m.group(2)) - offset + 1
        elif confirm and length == offset:  # the server ignores Range, but its length says we have it all
            return _End.PROVEN
        elif offset:  # 200: the server ignored Range and sends the whole file
            state.reset()
            bar.done = 0
            offset = 0
        if offset == 0 and length is not None and state.expected.size is not None and length != state.expected.size:
            raise SizeMismatchError(f"{what}: size mismatch: expected {state.expected.size:,} bytes, "
                                    f"the server announces {length:,} ({url})",
                                    hint="nothing was downloaded; the card or the server copy is wrong")
        received = _read_body(resp, state, what, watchdog, bar)
        if length is not None:
            if received < length:
                raise TransientFailure(f"connection dropped after {state.offset:,} bytes")
            return _End.PROVEN
        return _End.PROVEN if resp.chunked else _End.CLOSED


def _read_body(resp: http.client.HTTPResponse, state: _State, what: str, watchdog: Watchdog,
               bar: ProgressBar) -> int:
    """Stream the body into the .part; read1 returns whatever arrived, so a trickle is seen as one."""
    sock = _socket_of(resp)
    received = 0
    while True:
        if sock is not None:
            sock.settimeout(watchdog.wait_limit())
        try:
            data = resp.read1(CHUNK)
        except TimeoutError:
            raise watchdog.timed_out() from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise TransientFailure(f"connection dropped after {state.offset:,} bytes "
                                   f"({exc or type(exc).__name__})") from None
        if not data:
            return received
        state.write(data, what)
        received += len(data)
        bar.update(len(data))
        check_size_so_far(state.offset, state.expected, what)
        watchdog.advanced(len(data))


def _socket_of(resp: http.client.HTTPResponse) -> socket.socket | None:
    """The response's socket, to give each read the time left in the progress window (None if unreachable:
    then each read waits up to the timeout given at connect time)."""
    sock = getattr(getattr(resp.fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None
