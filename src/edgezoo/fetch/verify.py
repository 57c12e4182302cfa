"""Size and checksum verification, computed in one pass over the bytes (while streaming or over a cached file).

sha256 is always computed (it is what tables, manifests and the trust file record); the card's own algorithm
(md5 for some MLPerf files) is computed alongside when it differs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from edgezoo.core.errors import ChecksumMismatchError, SizeMismatchError
from edgezoo.zoo.schema import Checksum, HashAlgorithm

CHUNK = 1 << 20


@dataclass(frozen=True)
class Expected:
    """What a file must be: its size (if known) and checksum (card's, or the trusted sha256 for 'unknown')."""

    size: int | None
    checksum: Checksum

    @property
    def describe(self) -> str:
        return str(self.checksum) if self.checksum.known else "unknown (no published checksum)"


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str
    hexdigests: dict[str, str]  # algorithm value -> hex

    def hex(self, algorithm: HashAlgorithm) -> str:
        return self.hexdigests[algorithm.value]


class StreamHasher:
    """Feeds every byte to sha256 and to the expected algorithm; counts the size."""

    def __init__(self, checksum: Checksum) -> None:
        algos = {HashAlgorithm.SHA256.value}
        if checksum.known and checksum.algorithm is not None:
            algos.add(checksum.algorithm.value)
        self._hashes = {a: hashlib.new(a) for a in sorted(algos)}
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        for h in self._hashes.values():
            h.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        hexes = {a: h.hexdigest() for a, h in self._hashes.items()}
        return Digest(self.size, hexes[HashAlgorithm.SHA256.value], hexes)


def hash_file(path: Path, checksum: Checksum, hasher: StreamHasher | None = None) -> Digest:
    """Digest of a file on disk (optionally continuing an existing hasher)."""
    hasher = hasher or StreamHasher(checksum)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with path.open("rb") as fh:
        while n := fh.readinto(buf):
            hasher.update(view[:n])
    return hasher.digest()


def check_size_so_far(done: int, expected: Expected, what: str) -> None:
    """Fail as soon as more bytes arrived than the card allows (do not download a wrong file to the end)."""
    if expected.size is not None and done > expected.size:
        raise SizeMismatchError(f"{what}: size mismatch: expected {expected.size:,} bytes, got more than that",
                                hint=_NOT_KEPT)


def check(digest: Digest, expected: Expected, what: str) -> None:
    """Raise SizeMismatchError / ChecksumMismatchError naming expected vs got."""
    if expected.size is not None and digest.size != expected.size:
        raise SizeMismatchError(f"{what}: size mismatch: expected {expected.size:,} bytes, got {digest.size:,}",
                                hint=_NOT_KEPT)
    cs = expected.checksum
    if cs.known and cs.algorithm is not None:
        got = digest.hex(cs.algorithm)
        if got != cs.hexdigest:
            algo = cs.algorithm.value
            raise ChecksumMismatchError(f"{what}: checksum mismatch: expected {algo}:{cs.hexdigest}, got {algo}:{got}",
                                        hint=_NOT_KEPT)


def matches(digest: Digest, expected: Expected) -> bool:
    try:
        check(digest, expected, "")
    except (SizeMismatchError, ChecksumMismatchError):
        return False
    return True


_NOT_KEPT = ("the bad file was not kept; retry, try another source with --mirror, "
             "or check whether the publisher changed the file")
