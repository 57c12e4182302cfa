"""Safe unpacking of tgz / tar.gz / zip archives: what an archive holds, checked (`scan`, `select`); the writing is
fetch/unpack.py's.

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

import posixpath
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from edgezoo.core.errors import ArchiveError


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
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[/\\]")
CACHE_NOT_WRITABLE = "make the cache folder writable, or set EDGEZOO_CACHE to one that is"
UNSAFE_HINT = "the archive is unsafe or corrupt; nothing was extracted. Re-fetch it or check its source"
READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, UnicodeDecodeError,
                NotImplementedError, RuntimeError)  # the last two: zip methods/encryption zipfile cannot read


def scan(archive: Path, kind: ArchiveKind | str, budget: Budget | None = None) -> list[Entry]:
    """All entries of `archive`, validated (names, links, sizes); raises ArchiveError on the first unsafe one."""
    kind = ArchiveKind(kind)
    try:
        tally = _Tally(archive, DEFAULT_BUDGET if budget is None else budget, archive.stat().st_size)
        entries = _scan_tar(archive, tally) if kind.is_tar else _scan_zip(archive, tally)
    except ArchiveError:
        raise
    except READ_ERRORS as exc:
        raise ArchiveError(f"{archive.name}: not a readable {kind.value} archive ({exc})", hint=UNSAFE_HINT) from None
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


# ----------------------------------------------------------------------------------------------------------------
# Validation


def refuse(archive: Path, name: str, why: str) -> ArchiveError:
    return ArchiveError(f"{archive.name}: refusing entry {name!r}: {why}", hint=UNSAFE_HINT)


def normalise_name(archive: Path, raw: str) -> str:
    """Validate a member name and return it relative, POSIX-style, without './'."""
    if "\x00" in raw:
        raise refuse(archive, raw, "NUL byte in the name")
    if raw.startswith(("/", "\\")) or _DRIVE.match(raw):
        raise refuse(archive, raw, "absolute path")
    parts = [p for p in _SEPARATORS.split(raw) if p not in ("", ".")]
    if ".." in parts:
        raise refuse(archive, raw, "'..' in the path")
    return "/".join(parts)


def _check_symlink(archive: Path, name: str, target: str) -> None:
    """The checks one link allows on its own; chains are resolved later, on the whole tree (_check_tree)."""
    if "\x00" in target:
        raise refuse(archive, name, "NUL byte in the symlink target")
    if not target or target.startswith(("/", "\\")) or _DRIVE.match(target):
        raise refuse(archive, name, f"symlink to absolute path {target!r}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target.replace("\\", "/")))
    if resolved == ".." or resolved.startswith("../"):
        raise refuse(archive, name, f"symlink points outside the target ({target!r})")


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
                               f"(refused at {raw_name!r})", hint=UNSAFE_HINT)
        if self.bytes > self.limit:
            raise ArchiveError(
                f"{self.archive.name}: its members declare over {self.bytes:,} bytes (refused at {raw_name!r}), "
                f"more than the {self.limit:,} allowed for a {self.archive_size:,}-byte archive "
                f"({self.budget.ratio}x its size, at least {self.budget.floor:,}, at most {self.budget.cap:,}); "
                f"an archive bomb?", hint=UNSAFE_HINT)


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
                    raise refuse(archive, info.name, why) from None
                if not target:
                    raise refuse(archive, info.name, "hardlink to the archive root")
                entries.append(Entry(name, EntryKind.HARDLINK, 0, target))
            elif info.ischr() or info.isblk():
                raise refuse(archive, info.name, "device file")
            elif info.isfifo():
                raise refuse(archive, info.name, "fifo")
            else:
                raise refuse(archive, info.name, f"unsupported entry type {info.type!r}")
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
                raise refuse(archive, info.filename, "encrypted member")
            if info.compress_type not in _ZIP_METHODS:
                raise refuse(archive, info.filename, f"unsupported compression method {info.compress_type}")
            if ftype == stat.S_IFLNK:
                if info.file_size > _MAX_LINK_TARGET:
                    raise refuse(archive, info.filename, f"symlink target of {info.file_size:,} bytes")
                target = zf.read(info).decode("utf-8")
                _check_symlink(archive, name, target)
                entries.append(Entry(name, EntryKind.SYMLINK, 0, target))
            elif ftype in (stat.S_IFCHR, stat.S_IFBLK):
                raise refuse(archive, info.filename, "device file")
            elif ftype in (stat.S_IFIFO, stat.S_IFSOCK):
                raise refuse(archive, info.filename, "fifo or socket")
            elif is_dir:
                entries.append(Entry(name, EntryKind.DIR, 0))
            elif ftype in (0, stat.S_IFREG):
                entries.append(Entry(name, EntryKind.FILE, info.file_size))
            else:
                raise refuse(archive, info.filename, f"unsupported file type {oct(ftype)}")
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
                raise refuse(archive, e.name, f"its path passes through the symlink {parent!r}")
            if kind is not EntryKind.DIR:
                raise refuse(archive, e.name, f"its path passes through {parent!r}, a {kind.value}")
        before = kinds.get(e.name)
        if before is not None and not (before is EntryKind.DIR and e.kind is EntryKind.DIR):
            raise refuse(archive, e.name, f"given twice in the archive (as a {before.value} and as a {e.kind.value})")
        if e.kind is EntryKind.HARDLINK and kinds.get(e.link or "") not in (EntryKind.FILE, EntryKind.HARDLINK):
            raise refuse(archive, e.name, f"hardlink to {e.link!r}, not a regular file earlier in the archive")
        kinds[e.name] = e.kind
    links = {e.name: e.link or "" for e in entries if e.kind is EntryKind.SYMLINK}
    resolved = []
    for e in entries:
        if e.kind is EntryKind.SYMLINK:
            parts = _follow(archive, e.name, e.name.split("/")[:-1], e.link or "", links, 0)
            if parts is None:
                raise refuse(archive, e.name, f"symlink points outside the target ({e.link!r} leaves it once "
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
                raise refuse(archive, name, f"symlink loop or a chain of over {MAX_LINK_HOPS} links")
            followed = _follow(archive, name, parts[:-1], inner, links, hops + 1)
            if followed is None:
                return None
            parts = followed
    return parts
