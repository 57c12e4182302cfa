"""Inter-process lock around one cache entry, so concurrent fetches of a file end with one verified copy.

flock(2) locks are released by the kernel when the holder dies, so a killed fetch never leaves a stale lock
(the file itself stays; it is empty and harmless). That also makes "the lock is free" mean "no live process is
working on this entry", which is how `edgezoo cache clean` tells leftovers of killed runs from work in progress
(`try_locked`). Linux/macOS only.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgezoo.fetch.cache import lock_path
from edgezoo.progress import step


@contextmanager
def locked(target: Path, *, quiet: bool = False) -> Iterator[None]:
    """Hold an exclusive lock for `target` (a cache path) for the duration of the block."""
    fd = os.open(lock_path(target), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try(fd):
            if not quiet:
                step(f"waiting for another edgezoo process working on {target.name} ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@contextmanager
def try_locked(target: Path) -> Iterator[bool]:
    """Like `locked` without waiting: yields True holding the lock, or False (holding nothing) when it is taken.

    flock locks belong to open file descriptions, so a lock this very process holds on `target` also reads as
    taken."""
    fd = os.open(lock_path(target), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        yield _try(fd)
    finally:
        os.close(fd)


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
