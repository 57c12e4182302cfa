"""Safe unpacking of tgz / tar.gz / zip archives.

Every entry is checked BEFORE anything is written: absolute names, '..' components, symlinks or hardlinks
pointing outside the target, device files, fifos and sockets are refused with an ArchiveError naming the entry.
Extraction then goes into a temporary folder next to the target (tar with the stdlib 'data' filter as a second
line of defence; every extracted path is checked again with realpath) and is renamed into place atomically, so a
failure never leaves a half-unpacked folder.
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
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from edgezoo.errors import ArchiveError


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


_DRIVE = re.compile(r"^[A-Za-z]:")
_HINT = "the archive is unsafe or corrupt; nothing was extracted. Re-fetch it or check its source"


def scan(archive: Path, kind: ArchiveKind | str) -> list[Entry]:
    """All entries of `archive`, validated; raises ArchiveError on the first unsafe or unreadable one."""
    kind = ArchiveKind(kind)
    try:
        return _scan_tar(archive) if kind.is_tar else _scan_zip(archive)
    except ArchiveError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{archive.name}: not a readable {kind.value} archive ({exc})", hint=_HINT) from None


def unpack(archive: Path, kind: ArchiveKind | str, dest: Path) -> dict[str, int]:
    """Unpack `archive` into `dest` (replaced atomically); return {member name: size} of its regular files."""
    kind = ArchiveKind(kind)
    entries = scan(archive, kind)  # refuses before anything is written
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        if kind.is_tar:
            _extract_tar(archive, tmp)
        else:
            _extract_zip(archive, entries, tmp)
        _check_extracted(tmp, archive)
        _replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = {e.name: e.size for e in entries if e.kind is EntryKind.FILE}
    files.update({e.name: files[e.link] for e in entries if e.kind is EntryKind.HARDLINK and e.link in files})
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
    parts = [p for p in re.split(r"[/\\]", raw) if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(archive, raw, "'..' in the path")
    return "/".join(parts)


def _check_symlink(archive: Path, name: str, target: str) -> None:
    if not target or target.startswith(("/", "\\")) or _DRIVE.match(target):
        raise _refuse(archive, name, f"symlink to absolute path {target!r}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target.replace("\\", "/")))
    if resolved == ".." or resolved.startswith("../"):
        raise _refuse(archive, name, f"symlink points outside the target ({target!r})")


def _scan_tar(archive: Path) -> list[Entry]:
    entries: list[Entry] = []
    with tarfile.open(archive, "r:*") as tf:
        for info in tf:
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
    return [e for e in entries if e.name]  # "./" itself names the root


def _scan_zip(archive: Path) -> list[Entry]:
    entries: list[Entry] = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = normalise_name(archive, info.filename)
            mode = info.external_attr >> 16 if info.create_system == 3 else 0  # Unix mode, when made on Unix
            ftype = stat.S_IFMT(mode)
            if ftype == stat.S_IFLNK:
                target = zf.read(info).decode("utf-8")
                _check_symlink(archive, name, target)
                entries.append(Entry(name, EntryKind.SYMLINK, 0, target))
            elif ftype in (stat.S_IFCHR, stat.S_IFBLK):
                raise _refuse(archive, info.filename, "device file")
            elif ftype in (stat.S_IFIFO, stat.S_IFSOCK):
                raise _refuse(archive, info.filename, "fifo or socket")
            elif info.is_dir() or ftype == stat.S_IFDIR:
                entries.append(Entry(name, EntryKind.DIR, 0))
            elif ftype in (0, stat.S_IFREG):
                entries.append(Entry(name, EntryKind.FILE, info.file_size))
            else:
                raise _refuse(archive, info.filename, f"unsupported file type {oct(ftype)}")
    return [e for e in entries if e.name]


# ----------------------------------------------------------------------------------------------------------------
# Extraction (only after every entry passed the checks above)


def _extract_tar(archive: Path, tmp: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            # 'data' refuses the same tricks again, checked against the real file system while extracting.
            tf.extractall(tmp, filter="data")
    except tarfile.FilterError as exc:
        raise ArchiveError(f"{archive.name}: refused while extracting: {exc}", hint=_HINT) from None
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise ArchiveError(f"{archive.name}: cannot extract ({exc})", hint=_HINT) from None


def _extract_zip(archive: Path, entries: list[Entry], tmp: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = {normalise_name(archive, i.filename): i for i in zf.infolist()}
            for entry in entries:
                path = tmp / entry.name
                if entry.kind is EntryKind.DIR:
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                if entry.kind is EntryKind.SYMLINK:
                    os.symlink(entry.link or "", path)
                    continue
                with zf.open(infos[entry.name]) as src, path.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)  # zipfile checks the CRC at the end
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ArchiveError(f"{archive.name}: cannot extract ({exc})", hint=_HINT) from None


def _check_extracted(tmp: Path, archive: Path) -> None:
    """Every path written must resolve inside `tmp` (catches link chains that a per-entry check cannot see)."""
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
