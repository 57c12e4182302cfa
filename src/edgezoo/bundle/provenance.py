"""Where a model file came from, as far as edgezoo can tell: is it (built from) a stand-in?

Used by commands that receive bare paths (`edgezoo verify A B`), so that their reports still say STAND-IN when a
file is a stand-in from the cache or an artifact exported from one.
"""

from __future__ import annotations

from pathlib import Path

from edgezoo.bundle.reader import MANIFEST, read_manifest
from edgezoo.core.errors import EdgezooError
from edgezoo.fetch.cache import STANDINS, cache_root


def is_standin(path: Path) -> bool:
    """True for files in the stand-in cache namespace and for files of a bundle whose manifest says standin."""
    resolved = Path(path).resolve()
    standins_root = (cache_root() / STANDINS).resolve()
    if resolved.is_relative_to(standins_root):
        return True
    if not (resolved.parent / MANIFEST).is_file():
        return False
    try:  # the reader's bounded, link-refusing read; an unreadable manifest says nothing
        return bool(read_manifest(resolved.parent).get("standin"))
    except EdgezooError:
        return False
