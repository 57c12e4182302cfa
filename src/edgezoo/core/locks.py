"""Inter-process locks on a lock file or a folder: fetch takes one per cache entry (fetch/cache.py: `locked`), so
concurrent fetches of a file end with one verified copy; bundles take one per output folder (one swap at a time).

flock(2) locks are released by the kernel when the holder dies, so a killed process never leaves a stale lock
(a lock file itself stays; it is empty and harmless). That also makes "the lock is free" mean "no live process is
working on this entry", which is how `edgezoo cache clean` and the export's staging sweep tell leftovers of killed
runs from work in progress (`try_locked`, `try_lock`). A folder is locked through a descriptor on the folder
itself, so nothing is added to it. Linux/macOS only.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgezoo.core.errors import EdgezooError
from edgezoo.core.progress import step


def _open(path: Path) -> int:
    if path.is_dir():
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:  # a lock file that is a link is never opened through (it could create or lock a file elsewhere)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise EdgezooError(f"{path} is a link: edgezoo takes no lock through it",
                           hint=f"delete it ({path}) and run the command again") from None


def try_lock(path: Path) -> int | None:
    """Take an exclusive lock on `path` (a lock file, created if missing, or a folder) without waiting.

    Returns the open descriptor (closing it releases the lock), or None when another process holds the lock.
    """
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def flocked(path: Path, label: str, *, quiet: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on `path` (a lock file or a folder) for the duration of the block."""
    fd = try_lock(path)
    if fd is None:
        if not quiet:
            step(f"waiting for another edgezoo process working on {label} ...")
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
    try:
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
