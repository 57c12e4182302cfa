"""Inter-process lock around one cache entry, so concurrent fetches of a file end with one verified copy.

flock(2) locks are released by the kernel when the holder dies, so a killed fetch never leaves a stale lock
(the file itself stays; it is empty and harmless). Linux/macOS only.
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
    path = lock_path(target)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not quiet:
                step(f"waiting for another edgezoo process working on {target.name} ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
