"""Safe unpacking of tgz / tar.gz / zip archives.

Nothing inside an archive is trusted: member names, link targets and declared sizes are all checked by `scan`
BEFORE anything is written, and a refused archive leaves nothing behind.

- Names: absolute paths, '..' components, NUL bytes, device files, fifos, sockets, encrypted or oddly compressed
  zip members are refused with an ArchiveError naming the entry.
- Links, on a simulated tree of the whole archive: every symlink is resolved inside that tree, following the
  other links of the archive the way the kernel would. Chains such as `a -> .`, `u1 -> a/..`, `u2 -> u1/..` look
  harmless one link at a time but together leave the target; they are refused, as are loops, members whose path
  passes through a symlink (the only way to write through one), a name given twice as different kinds, and
  hardlinks that do not name a regular file earlier in the archive.
- Sizes (archive bombs): the declared sizes of all regular files and the number of entries must fit a `Budget`
  (a multiple of the archive's own size, with a floor and an absolute cap). The tar scan stops at the first
  header over budget, so even decompressing a bomb is bounded. While writing, no member may produce more bytes
  than it declared (zip sizes are only claims).

Only the members the card names are extracted (`select`; everything when it names none), plus what they need
(hardlink and symlink targets). Tar and zip share one extraction routine, into a temporary folder next to the
target: folders, then regular files (O_EXCL | O_NOFOLLOW), then hardlinks, then symlinks LAST, so no write can
pass through a link even if the scan had a hole. Tar members also go through the stdlib 'data' filter as a second
line of defence, and every extracted path is checked with realpath before the folder is renamed into place
atomically; a failure never leaves a half-unpacked folder.

Zip symlinks are extracted under exactly the same rules as tar ones rather than refused: one scan and one
extraction routine serve both formats, so their safety rests on the same simulated tree and links-last order,
and an archive with harmless internal links stays usable whatever its format.

A full disk while unpacking is a DiskFullError naming the folder (not "unsafe archive"); the temporary folder is
removed.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import IO

from edgezoo.core.errors import ArchiveError, FetchError, disk_full, is_disk_full


class ArchiveKind(str, Enum):
    TGZ = "tgz"
    TAR_GZ = "tar.gz"
    ZIP = "zip"

    @property
    def is_tar(self) -> bool:
        return self is not ArchiveKind.ZIP


class EntryKind(str, Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"


@dataclass(frozen=True)
class Entry:
    name: str  # normalised relative POSIX path
    kind: EntryKind
    size: int
    link: str | None = None  # symlink target (as stored) or hardlink target (normalised name)
    target: str | None = None  # symlinks: the archive path the link resolves to ("" = the root), set by scan


@dataclass(frozen=True)
class Budget:
    """How far an archive may expand: declared bytes of its regular files, and its number of entries."""

    ratio: int  # declared bytes may be this many times the archive's size ...
    floor: int  # ... but at least this many (tiny archives of text legitimately compress far better) ...
    cap: int  # ... and never more than this
    max_entries: int

    def limit(self, archive_size: int) -> int:
        return min(self.cap, max(self.floor, self.ratio * archive_size))


# Model archives barely compress (weights are high-entropy floats: the MLPerf tgz/zip files expand about 1.0-1.5x);
# configs and label texts reach ~10x. Deflate cannot exceed ~1032x, which is what a bomb of zeros achieves.
# 100x leaves real archives a wide margin and refuses bombs well before that: a 1 MB zip claiming 1 GiB (1000x)
# and a 9 MB tgz claiming 2 GiB (240x) are both refused.
MAX_RATIO = 100
# Below 16 MiB of content the ratio is not applied: writing that much is harmless, and a few-KB archive of text
# can legitimately exceed 100x.
MIN_BUDGET = 16 << 20
# Far above any model bundle the zoo knows (the largest expands to well under 1 GiB) yet below the free space of
# a typical workstation, so even an archive that is huge on the wire cannot fill the disk.
MAX_BYTES = 16 << 30
# Model archives hold tens of entries; a million empty files exhausts inodes without any size.
MAX_ENTRIES = 100_000
# Tests override this (monkeypatch) to try bombs that are small on disk.
DEFAULT_BUDGET = Budget(MAX_RATIO, MIN_BUDGET, MAX_BYTES, MAX_ENTRIES)

MAX_LINK_HOPS = 40  # like Linux's MAXSYMLINKS: deeper chains are treated as loops
_MAX_LINK_TARGET = 4096  # a zip symlink's target is its data: read only what a path can be (PATH_MAX)
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[/\\]")
CACHE_NOT_WRITABLE = "make the cache folder writable, or set EDGEZOO_CACHE to one that is"
_HINT = "the archive is unsafe or corrupt; nothing was extracted. Re-fetch it or check its source"
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, UnicodeDecodeError,
                NotImplementedError, RuntimeError)  # the last two: zip methods/encryption zipfile cannot read


def scan(archive: Path, kind: ArchiveKind | str, budget: Budget | None = None) -> list[Entry]:
    """All entries of `archive`, validated (names, links, sizes); raises ArchiveError on the first unsafe one."""
    kind = ArchiveKind(kind)
    try:
        tally = _Tally(archive, DEFAULT_BUDGET if budget is None else budget, archive.stat().st_size)
        entries = _scan_tar(archive, tally) if kind.is_tar else _scan_zip(archive, tally)
    except ArchiveError:
        raise
    except _READ_ERRORS as exc:
        raise ArchiveError(f"{archive.name}: not a readable {kind.value} archive ({exc})", hint=_HINT) from None
    return _check_tree(archive, [e for e in entries if e.name])  # "./" itself names the root


def select(entries: list[Entry], wanted: Iterable[str] = ()) -> list[Entry]:
    """The entries to extract for the `wanted` member names (every entry when none is given), in archive order.

    A wanted entry brings what it needs: a folder everything under it, a link its target (recursively). Wanted
    names the archive does not have are ignored here; the caller reports them."""
    todo = list(wanted)
    if not todo:
        return list(entries)
    by_name = {e.name: e for e in entries}
    chosen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in chosen:
            continue
        entry = by_name.get(name)
        if entry is None or entry.kind is EntryKind.DIR:  # a folder, listed or implied, or the root "" itself
            below = [e.name for e in entries if name == "" or e.name.startswith(name + "/")]
            if entry is None and not below:
                continue  # not in the archive at all
            todo.extend(below)
        elif entry.kind is EntryKind.HARDLINK:
            todo.append(entry.link or "")
        elif entry.kind is EntryKind.SYMLINK:
            todo.append(entry.target or "")
        chosen.add(name)
    return [e for e in entries if e.name in chosen]


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
        if isinstance(exc, _READ_ERRORS) and not isinstance(exc, ArchiveError):
            raise ArchiveError(f"{archive.name}: cannot extract ({exc})", hint=_HINT) from None
        raise
    files = {e.name: e.size for e in entries if e.kind is EntryKind.FILE}
    for e in entries:  # in archive order, so a hardlink to a hardlink finds its size
        if e.kind is EntryKind.HARDLINK and e.link in files:
            files[e.name] = files[e.link]
    return files


# ----------------------------------------------------------------------------------------------------------------
# Validation


def _refuse(archive: Path, name: str, why: str) -> ArchiveError:
    return ArchiveError(f"{archive.name}: refusing entry {name!r}: {why}", hint=_HINT)


def normalise_name(archive: Path, raw: str) -> str:
    """Validate a member name and return it relative, POSIX-style, without './'."""
    if "\x00" in raw:
        raise _refuse(archive, raw, "NUL byte in the name")
    if raw.startswith(("/", "\\")) or _DRIVE.match(raw):
        raise _refuse(archive, raw, "absolute path")
    parts = [p for p in _SEPARATORS.split(raw) if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(archive, raw, "'..' in the path")
    return "/".join(parts)


def _check_symlink(archive: Path, name: str, target: str) -> None:
    """The checks one link allows on its own; chains are resolved later, on the whole tree (_check_tree)."""
    if "\x00" in target:
        raise _refuse(archive, name, "NUL byte in the symlink target")
    if not target or target.startswith(("/", "\\")) or _DRIVE.match(target):
        raise _refuse(archive, name, f"symlink to absolute path {target!r}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target.replace("\\", "/")))
    if resolved == ".." or resolved.startswith("../"):
        raise _refuse(archive, name, f"symlink points outside the target ({target!r})")


class _Tally:
    """Counts entries and declared bytes while scanning, refusing as soon as the budget is exceeded."""

    def __init__(self, archive: Path, budget: Budget, archive_size: int) -> None:
        self.archive, self.budget, self.archive_size = archive, budget, archive_size
        self.limit = budget.limit(archive_size)
        self.entries = self.bytes = 0

    def add(self, raw_name: str, size: int) -> None:
        self.entries += 1
        self.bytes += size
        if self.entries > self.budget.max_entries:
            raise ArchiveError(f"{self.archive.name}: more than {self.budget.max_entries:,} entries "
                               f"(refused at {raw_name!r})", hint=_HINT)
        if self.bytes > self.limit:
            raise ArchiveError(
                f"{self.archive.name}: its members declare over {self.bytes:,} bytes (refused at {raw_name!r}), "
                f"more than the {self.limit:,} allowed for a {self.archive_size:,}-byte archive "
                f"({self.budget.ratio}x its size, at least {self.budget.floor:,}, at most {self.budget.cap:,}); "
                f"an archive bomb?", hint=_HINT)


def _scan_tar(archive: Path, tally: _Tally) -> list[Entry]:
    entries: list[Entry] = []
    with tarfile.open(archive, "r:*") as tf:
        for info in tf:  # headers one by one: a bomb is refused at its header, before its data is read
            tally.add(info.name, info.size if info.isreg() else 0)
            name = normalise_name(archive, info.name)
            if info.isreg():
                entries.append(Entry(name, EntryKind.FILE, info.size))
            elif info.isdir():
                entries.append(Entry(name, EntryKind.DIR, 0))
            elif info.issym():
                _check_symlink(archive, name, info.linkname)
                entries.append(Entry(name, EntryKind.SYMLINK, 0, info.linkname))
            elif info.islnk():
                # A hardlink target is an archive-root path: the same rules as any member name.
                try:
                    target = normalise_name(archive, info.linkname)
                except ArchiveError:
                    why = f"hardlink points outside the target ({info.linkname!r})"
                    raise _refuse(archive, info.name, why) from None
                if not target:
                    raise _refuse(archive, info.name, "hardlink to the archive root")
                entries.append(Entry(name, EntryKind.HARDLINK, 0, target))
            elif info.ischr() or info.isblk():
                raise _refuse(archive, info.name, "device file")
            elif info.isfifo():
                raise _refuse(archive, info.name, "fifo")
            else:
                raise _refuse(archive, info.name, f"unsupported entry type {info.type!r}")
    return entries


def _scan_zip(archive: Path, tally: _Tally) -> list[Entry]:
    entries: list[Entry] = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            mode = info.external_attr >> 16 if info.create_system == 3 else 0  # Unix mode, when made on Unix
            ftype = stat.S_IFMT(mode)
            is_dir = info.is_dir() or ftype == stat.S_IFDIR
            tally.add(info.filename, 0 if is_dir else info.file_size)
            name = normalise_name(archive, info.filename)
            if info.flag_bits & 0x1:
                raise _refuse(archive, info.filename, "encrypted member")
            if info.compress_type not in _ZIP_METHODS:
                raise _refuse(archive, info.filename, f"unsupported compression method {info.compress_type}")
            if ftype == stat.S_IFLNK:
                if info.file_size > _MAX_LINK_TARGET:
                    raise _refuse(archive, info.filename, f"symlink target of {info.file_size:,} bytes")
                target = zf.read(info).decode("utf-8")
                _check_symlink(archive, name, target)
                entries.append(Entry(name, EntryKind.SYMLINK, 0, target))
            elif ftype in (stat.S_IFCHR, stat.S_IFBLK):
                raise _refuse(archive, info.filename, "device file")
            elif ftype in (stat.S_IFIFO, stat.S_IFSOCK):
                raise _refuse(archive, info.filename, "fifo or socket")
            elif is_dir:
                entries.append(Entry(name, EntryKind.DIR, 0))
            elif ftype in (0, stat.S_IFREG):
                entries.append(Entry(name, EntryKind.FILE, info.file_size))
            else:
                raise _refuse(archive, info.filename, f"unsupported file type {oct(ftype)}")
    return entries


def _check_tree(archive: Path, entries: list[Entry]) -> list[Entry]:
    """Simulate the tree the archive would build; refuse what could write or point outside; resolve symlinks."""
    kinds: dict[str, EntryKind] = {}  # every path of the tree, parents included (implicitly folders)
    for e in entries:
        parts = e.name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            kind = kinds.setdefault(parent, EntryKind.DIR)
            if kind is EntryKind.SYMLINK:
                raise _refuse(archive, e.name, f"its path passes through the symlink {parent!r}")
            if kind is not EntryKind.DIR:
                raise _refuse(archive, e.name, f"its path passes through {parent!r}, a {kind.value}")
        before = kinds.get(e.name)
        if before is not None and not (before is EntryKind.DIR and e.kind is EntryKind.DIR):
            raise _refuse(archive, e.name, f"given twice in the archive (as a {before.value} and as a {e.kind.value})")
        if e.kind is EntryKind.HARDLINK and kinds.get(e.link or "") not in (EntryKind.FILE, EntryKind.HARDLINK):
            raise _refuse(archive, e.name, f"hardlink to {e.link!r}, not a regular file earlier in the archive")
        kinds[e.name] = e.kind
    links = {e.name: e.link or "" for e in entries if e.kind is EntryKind.SYMLINK}
    resolved = []
    for e in entries:
        if e.kind is EntryKind.SYMLINK:
            parts = _follow(archive, e.name, e.name.split("/")[:-1], e.link or "", links, 0)
            if parts is None:
                raise _refuse(archive, e.name, f"symlink points outside the target ({e.link!r} leaves it once "
                                               f"the archive's other links are followed)")
            e = replace(e, target="/".join(parts))
        resolved.append(e)
    return resolved


def _follow(archive: Path, name: str, start: list[str], link: str, links: dict[str, str],
            hops: int) -> list[str] | None:
    """Where `link`, stored in folder `start`, leads inside the simulated tree; None when it leaves the root.

    Components that are not links are taken lexically: in an empty target folder they exist only if the archive
    creates them, and where the kernel would fail (a missing folder, a file used as one) the lexical answer is at
    worst stricter."""
    parts = list(start)
    for comp in _SEPARATORS.split(link):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(comp)
        inner = links.get("/".join(parts))
        if inner is not None:
            if hops >= MAX_LINK_HOPS:
                raise _refuse(archive, name, f"symlink loop or a chain of over {MAX_LINK_HOPS} links")
            followed = _follow(archive, name, parts[:-1], inner, links, hops + 1)
            if followed is None:
                return None
            parts = followed
    return parts


# ----------------------------------------------------------------------------------------------------------------
# Extraction (only after every entry passed the checks above)


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
                           f"(e.g. {sorted(missing)[0]!r})", hint=_HINT)
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
                    raise ArchiveError(f"{archive.name}: refused while extracting: {exc}", hint=_HINT) from None
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
                raise _refuse(archive, name, f"holds more than the {declared:,} bytes it declares")
            out.write(chunk)
    if written != declared:
        raise _refuse(archive, name, f"holds {written:,} bytes, not the {declared:,} it declares")


def _check_extracted(tmp: Path, archive: Path) -> None:
    """Every path written must resolve inside `tmp` (a last check; the scan already resolved every link)."""
    root = os.path.realpath(tmp)
    for dirpath, dirnames, filenames in os.walk(tmp):
        for name in dirnames + filenames:
            real = os.path.realpath(os.path.join(dirpath, name))
            if real != root and not real.startswith(root + os.sep):
                rel = os.path.relpath(os.path.join(dirpath, name), tmp)
                raise _refuse(archive, rel, "resolves outside the target after extraction")


def _replace_dir(tmp: Path, dest: Path) -> None:
    if dest.exists() or dest.is_symlink():
        trash = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
        os.rename(dest, trash / "old")
        os.rename(tmp, dest)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(tmp, dest)
