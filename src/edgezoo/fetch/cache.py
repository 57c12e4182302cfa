"""Where fetched files live.

Layout under the cache root (EDGEZOO_CACHE, else the platform's user cache dir):

    published/<card id>/<file name>                    a verified published file
    published/<card id>/<file name>.unpacked/          its archive members (safe-unpacked)
    standins/<variant>/<builder>-v<version>/<file>     a stand-in, with <file>.sha256.json next to it
    trust.json                                         trust-on-first-use hashes (files without a known checksum)
    .locks/                                            inter-process lock files
    *.part, .*.build/, .*.tmp, .*.old/                 work in progress, or left by a killed run (fetch/leftovers.py)

Published files and stand-ins never share a directory, so one can never be taken for the other.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    return cache_root() / PUBLISHED / _safe_component(card_id) / _safe_component(file_name)


def standin_dir(builder: str, version: int, variant: StandinVariant) -> Path:
    return cache_root() / STANDINS / variant.value / _safe_component(f"{builder}-v{version}")


def unpacked_dir(archive: Path) -> Path:
    return archive.with_name(archive.name + UNPACKED_SUFFIX)


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX)


def lock_path(target: Path) -> Path:
    """One lock file per cached target, kept out of the namespaces themselves."""
    key = hashlib.sha256(str(target).encode()).hexdigest()[:24]
    return ensure_dir(cache_root() / ".locks") / f"{_safe_component(target.name)[:60]}-{key}.lock"


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
