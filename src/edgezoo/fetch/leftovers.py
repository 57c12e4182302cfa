"""What interrupted runs leave in the cache, and the one rule for when it may go: no live process owns it.

A run that is killed (kill -9, power loss, a full disk in the wrong place) cannot clean up after itself. What it
leaves in a cache folder, and who owns each item while a run is alive:

    <file>.part                      a partial download (fetch/download.py)   owner: whoever holds <file>'s lock
    .<name>.<random>.build/          a stand-in being built (fetch/standin.py) owner: whoever holds <name>'s lock
    .<name>.<random>.tmp/ and .old/  an archive being unpacked (fetch/archive.py, under the lock of <name>)
    .<name>.<pid>.tmp                a JSON record being written (trust.json, *.unpacked.json)  owner: <pid>

Every process that writes one of these holds the inter-process lock of its target (core/locks.py) and the kernel
drops that lock when the process dies, so a free lock means a dead owner. Items are removed while holding those
locks: a run that starts meanwhile waits, then finds a clean folder rather than a half-removed one.

`edgezoo cache clean --stale` and the stand-in path (which sweeps a builder folder before building) use the same
functions, so both agree on what is stale. `.part` files are only removed on the user's request: they are what
resumes an interrupted download.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from edgezoo.core.errors import FetchError
from edgezoo.core.progress import step
from edgezoo.fetch.cache import PART_SUFFIX, confined, try_locked

# tempfile.mkdtemp(prefix=".<name>.", suffix=...) adds 8 characters from [a-z0-9_].
_WORK_DIR = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.(?:build|tmp|old)$")
_PID_FILE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


class LeftoverKind(str, Enum):
    PARTIAL = "partial"  # a resumable download
    WORK_DIR = "work folder"  # a build or unpack folder
    TEMP_FILE = "temp file"  # a record being written


@dataclass(frozen=True)
class Owner:
    """Who may be using a cache item: the holders of these cache targets' locks, and/or one process id."""

    locks: tuple[Path, ...] = ()
    pid: int | None = None


@dataclass(frozen=True)
class Leftover:
    path: Path
    kind: LeftoverKind
    target: Path  # the cache entry it was being written for
    owner: Owner


def find_leftovers(folder: Path) -> list[Leftover]:
    """The leftovers directly inside `folder` (owned or not), by name."""
    found: list[Leftover] = []
    for path in children(folder):
        name = path.name
        if name.endswith(PART_SUFFIX) and not name.startswith(".") and path.is_file():
            target = path.with_name(name.removesuffix(PART_SUFFIX))
            found.append(Leftover(path, LeftoverKind.PARTIAL, target, Owner((target,))))
        elif (m := _WORK_DIR.match(name)) and path.is_dir() and not path.is_symlink():
            target = folder / m["name"]
            found.append(Leftover(path, LeftoverKind.WORK_DIR, target, Owner((target,))))
        elif (m := _PID_FILE.match(name)) and not path.is_dir():
            found.append(Leftover(path, LeftoverKind.TEMP_FILE, folder / m["name"], Owner(pid=int(m["pid"]))))
    return found


@contextmanager
def unowned(owner: Owner) -> Iterator[bool]:
    """True, holding every lock of `owner` for the block, when no live process owns the item; else False."""
    with ExitStack() as stack:
        free = all(stack.enter_context(try_locked(target)) for target in owner.locks)
        yield free and not (owner.pid is not None and _alive(owner.pid))


def in_use(owner: Owner) -> bool:
    with unowned(owner) as free:
        return not free


def remove_unowned(paths: Iterable[Path], owner: Owner) -> bool:
    """Remove `paths` (files or folders) if nobody owns them; False, removing nothing, when somebody does."""
    with unowned(owner) as free:
        if free:
            for path in paths:
                remove_path(path)
        return free


def sweep(folder: Path, kinds: Iterable[LeftoverKind] = (LeftoverKind.WORK_DIR, LeftoverKind.TEMP_FILE)) -> int:
    """Remove the leftovers of `kinds` in `folder` that no live process owns; return the bytes freed."""
    wanted = set(kinds)
    freed = 0
    for item in find_leftovers(folder):
        if item.kind in wanted:
            size = tree_size(item.path)
            if remove_unowned([item.path], item.owner):
                freed += size
                step(f"removed {item.path.name} in {folder}, left by an interrupted run ({size:,} bytes)")
    return freed


def remove_path(path: Path) -> None:
    """Remove a file, link or folder tree inside the cache (a link itself, never what it points to); missing is
    fine, anything else is a one-line FetchError."""
    confined(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise FetchError(f"cannot remove {exc.filename or path}: {exc.strerror}",
                         hint="check the permissions of the cache folder (EDGEZOO_CACHE)") from None


def tree_size(path: Path) -> int:
    """Bytes of a file, or of every file below a folder (links are not followed); 0 when it is gone."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
    except FileNotFoundError:
        return 0
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


def children(folder: Path) -> list[Path]:
    """The entries of a cache folder, sorted; none when it does not exist; FetchError when it leads out of the
    cache (a symlinked published/ or standins/ is never listed, so never cleaned)."""
    confined(folder, follow=True)
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _alive(pid: int) -> bool:
    if pid <= 0:  # kill(0, ...) would address our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True
