"""Where fetched files live.

Layout under the cache root (EDGEZOO_CACHE, else the platform's user cache dir):

    published/<card id>/<file name>                    a verified published file
    published/<card id>/<file name>.unpacked/          its archive members (safe-unpacked)
    standins/<variant>/<builder>-v<version>/<file>     a stand-in, with <file>.sha256.json next to it
    trust.json                                         trust-on-first-use hashes (files without a known checksum)
    .locks/                                            inter-process lock files
    *.part, .*.build/, .*.tmp, .*.old/                 work in progress, or left by a killed run (fetch/leftovers.py)

Published files and stand-ins never share a directory, so one can never be taken for the other.

Every path the cache code lists, removes or writes resolves inside the root (`confined`): a link that leads out (a
symlinked published/ or standins/, a card folder, .locks/) is refused with one line naming it, never followed. Files
are written through `open_for_writing` (O_NOFOLLOW: a `.part` or temp file that is a link is refused, not written
through).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from edgezoo.core.errors import FetchError
from edgezoo.core.locks import flocked, try_lock
from edgezoo.standins import StandinVariant

PUBLISHED = "published"
STANDINS = "standins"
PART_SUFFIX = ".part"
UNPACKED_SUFFIX = ".unpacked"


def cache_root() -> Path:
    """The cache root: $EDGEZOO_CACHE if set, else the user cache dir (e.g. ~/.cache/edgezoo)."""
    env = os.environ.get("EDGEZOO_CACHE", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs  # only needed when no explicit cache is configured

    return Path(platformdirs.user_cache_dir("edgezoo", appauthor=False)).resolve()


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create cache folder {path}: {exc.strerror}",
                         hint="set EDGEZOO_CACHE to a writable folder") from None
    return path


def published_path(card_id: str, file_name: str) -> Path:
    return confined(cache_root() / PUBLISHED / _safe_component(card_id) / _safe_component(file_name))


def standin_dir(builder: str, version: int, variant: StandinVariant) -> Path:
    return confined(cache_root() / STANDINS / variant.value / _safe_component(f"{builder}-v{version}"), follow=True)


def unpacked_dir(archive: Path) -> Path:
    return archive.with_name(archive.name + UNPACKED_SUFFIX)


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX)


def lock_path(target: Path) -> Path:
    """One lock file per cached target, kept out of the namespaces themselves."""
    key = hashlib.sha256(str(target).encode()).hexdigest()[:24]
    folder = confined(cache_root() / ".locks", follow=True)
    return ensure_dir(folder) / f"{_safe_component(target.name)[:60]}-{key}.lock"


def confined(path: Path, *, follow: bool = False) -> Path:
    """`path`, once its folder (with `follow`: the path itself, e.g. a folder to list) resolves inside the cache
    root; FetchError naming the link that leads out otherwise. A link to elsewhere inside the cache is fine."""
    root = cache_root()
    path = Path(path)
    real = path.resolve() if follow else path.parent.resolve() / path.name
    if real.is_relative_to(root):
        return path
    candidates = [*reversed(path.parents), path][:None if follow else -1]
    link = next((p for p in candidates if p.is_relative_to(root) and p != root and p.is_symlink()), path)
    target = f" to {os.readlink(link)}" if link.is_symlink() else ""
    raise FetchError(f"{link} is a link{target}, outside the cache {root}: edgezoo lists, removes and writes "
                     f"nothing through it", hint=f"remove the link ({link}) or set EDGEZOO_CACHE to another folder")


def open_for_writing(path: Path, *, append: bool = False, exclusive: bool = False) -> BinaryIO:
    """An unbuffered binary file opened for writing without following a link (O_NOFOLLOW), in a folder inside the
    cache; FetchError when `path` is a link or not a regular file. `exclusive`: a fresh file (any old one, or a link
    in its place, is removed first)."""
    path = confined(Path(path))
    if exclusive:
        path.unlink(missing_ok=True)  # removes a link itself, never what it points to
    def opener(name: str, flags: int) -> int:  # NONBLOCK: a FIFO in its place fails instead of hanging
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)

    try:  # truncated only after the checks below: "wb" would truncate before them
        out = open(path, "xb" if exclusive else "ab", buffering=0, opener=opener)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise not_a_cache_file(path) from None
        raise
    info = os.fstat(out.fileno())
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:  # a hard link shares its bytes with another file
        out.close()
        raise not_a_cache_file(path)
    os.set_blocking(out.fileno(), True)
    if not append and not exclusive:
        out.truncate(0)
    return out


def refuse_link(path: Path) -> Path:
    """`path` when it is missing or a regular file of its own (no link, no hard link): read before written."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return path
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        raise not_a_cache_file(path)
    return path


def not_a_cache_file(path: Path) -> FetchError:
    kind = "a link" if Path(path).is_symlink() else "not a regular file of its own (a FIFO, a hard link, ...)"
    return FetchError(f"{path} is {kind}: edgezoo writes no cache file through it and kept nothing",
                      hint=f"delete it ({path}) and run the command again")


def _safe_component(name: str) -> str:
    # Card ids and file names come from validated cards, but a path separator in one would escape the namespace.
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise FetchError(f"{name!r} cannot be used as a cache file name", hint="fix the model card")
    return name


@contextmanager
def locked(target: Path, *, quiet: bool = False) -> Iterator[None]:
    """Hold an exclusive lock for `target` (a cache path) for the duration of the block."""
    with flocked(lock_path(target), target.name, quiet=quiet):
        yield


@contextmanager
def try_locked(target: Path) -> Iterator[bool]:
    """Like `locked` without waiting: yields True holding the lock, or False (holding nothing) when it is taken.

    flock locks belong to open file descriptions, so a lock this very process holds on `target` also reads as
    taken."""
    fd = try_lock(lock_path(target))
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)
