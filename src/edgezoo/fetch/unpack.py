"""Unpacking an archive `scan` (fetch/archive.py) has passed: only after every entry is checked, into a temporary
folder next to the target -- folders, then regular files (O_EXCL | O_NOFOLLOW, never more bytes than declared), then
hardlinks, then symlinks LAST, so no write can pass through a link -- every extracted path checked with realpath,
then the folder renamed into place. A failure (a full disk included) never leaves a half-unpacked folder.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from edgezoo.core.errors import ArchiveError, FetchError, disk_full, is_disk_full
from edgezoo.fetch.archive import (CACHE_NOT_WRITABLE, READ_ERRORS, UNSAFE_HINT, ArchiveKind, Budget, Entry, EntryKind,
                                   normalise_name, refuse, scan, select)

_CHUNK = 1 << 20


def unpack(archive: Path, kind: ArchiveKind | str, dest: Path, members: Iterable[str] = (),
           budget: Budget | None = None) -> dict[str, int]:
    """Unpack `members` of `archive` (all when empty) into `dest`, replaced atomically.

    Returns {member name: size} of the regular files extracted. Raises ArchiveError for an unsafe or corrupt
    archive and DiskFullError when the disk fills up; in both cases nothing is left behind."""
    kind = ArchiveKind(kind)
    entries = select(scan(archive, kind, budget), members)  # refuses before anything is written
    tmp: Path | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        _extract(archive, kind, entries, tmp)
        _check_extracted(tmp, archive)
        _replace_dir(tmp, dest)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise disk_full(exc, dest.parent, f"unpacking {archive.name}") from None
        if isinstance(exc, OSError) and exc.filename not in (None, str(archive)):  # our side: a folder or file
            raise FetchError(f"cannot unpack {archive.name} into {dest.parent}: {exc.strerror} ({exc.filename})",
                             hint=CACHE_NOT_WRITABLE) from None
        if isinstance(exc, READ_ERRORS) and not isinstance(exc, ArchiveError):
            raise ArchiveError(f"{archive.name}: cannot extract ({exc})", hint=UNSAFE_HINT) from None
        raise
    files = {e.name: e.size for e in entries if e.kind is EntryKind.FILE}
    for e in entries:  # in archive order, so a hardlink to a hardlink finds its size
        if e.kind is EntryKind.HARDLINK and e.link in files:
            files[e.name] = files[e.link]
    return files


def _extract(archive: Path, kind: ArchiveKind, entries: list[Entry], tmp: Path) -> None:
    for e in entries:
        if e.kind is EntryKind.DIR:
            (tmp / e.name).mkdir(parents=True, exist_ok=True)
    missing = {e.name for e in entries if e.kind is EntryKind.FILE}
    for entry, data in _member_streams(archive, kind, entries, tmp):
        with data:
            _write_member(data, tmp / entry.name, entry.size, archive, entry.name)
        missing.discard(entry.name)
    if missing:  # the archive changed on disk after the scan
        raise ArchiveError(f"{archive.name}: {len(missing)} member(s) vanished between scan and extraction "
                           f"(e.g. {sorted(missing)[0]!r})", hint=UNSAFE_HINT)
    for e in entries:  # links last: nothing is written after them, so no write can pass through one
        if e.kind is EntryKind.HARDLINK:
            os.link(tmp / (e.link or ""), tmp / e.name, follow_symlinks=False)
    for e in entries:
        if e.kind is EntryKind.SYMLINK:
            (tmp / e.name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(e.link or "", tmp / e.name)


def _member_streams(archive: Path, kind: ArchiveKind, entries: list[Entry],
                    tmp: Path) -> Iterator[tuple[Entry, IO[bytes]]]:
    """(entry, data stream) of the chosen regular files, in archive order (one forward pass through a tgz)."""
    chosen = {e.name: e for e in entries}
    if kind.is_tar:
        pending = set(chosen)
        with tarfile.open(archive, "r:*") as tf:
            for info in tf:
                if not pending:
                    break  # the rest of the stream holds nothing we extract: do not decompress it
                entry = chosen.get(normalise_name(archive, info.name))
                if entry is None:
                    continue
                pending.discard(entry.name)
                try:
                    tarfile.data_filter(info, str(tmp))  # the stdlib's own rules, a second line of defence
                except tarfile.FilterError as exc:
                    raise ArchiveError(f"{archive.name}: refused while extracting: {exc}", hint=UNSAFE_HINT) from None
                if entry.kind is EntryKind.FILE:
                    stream = tf.extractfile(info)
                    if stream is not None:
                        yield entry, stream
    else:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                entry = chosen.get(normalise_name(archive, info.filename))
                if entry is not None and entry.kind is EntryKind.FILE:
                    yield entry, zf.open(info)


def _write_member(data: IO[bytes], path: Path, declared: int, archive: Path, name: str) -> None:
    """Copy one member to a new file at `path`, refusing to write more bytes than it declared."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    written = 0
    with os.fdopen(fd, "wb") as out:
        while chunk := data.read(min(_CHUNK, declared - written + 1)):
            written += len(chunk)
            if written > declared:  # zip sizes are claims; never trust them to bound what is written
                raise refuse(archive, name, f"holds more than the {declared:,} bytes it declares")
            out.write(chunk)
    if written != declared:
        raise refuse(archive, name, f"holds {written:,} bytes, not the {declared:,} it declares")


def _check_extracted(tmp: Path, archive: Path) -> None:
    """Every path written must resolve inside `tmp` (a last check; the scan already resolved every link)."""
    root = os.path.realpath(tmp)
    for dirpath, dirnames, filenames in os.walk(tmp):
        for name in dirnames + filenames:
            real = os.path.realpath(os.path.join(dirpath, name))
            if real != root and not real.startswith(root + os.sep):
                rel = os.path.relpath(os.path.join(dirpath, name), tmp)
                raise refuse(archive, rel, "resolves outside the target after extraction")


def _replace_dir(tmp: Path, dest: Path) -> None:
    if dest.exists() or dest.is_symlink():
        trash = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
        os.rename(dest, trash / "old")
        os.rename(tmp, dest)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(tmp, dest)
