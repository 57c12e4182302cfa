"""Where a model file came from, as far as edgezoo can tell: is it (built from) a stand-in?

Used by commands that receive bare paths (`edgezoo verify A B`), so that their reports still say STAND-IN when a
file is a stand-in from the cache or an artifact exported from one.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgezoo.fetch.cache import STANDINS, cache_root


def is_standin(path: Path) -> bool:
    """True for files in the stand-in cache namespace and for files of a bundle whose manifest says standin."""
    resolved = Path(path).resolve()
    standins_root = (cache_root() / STANDINS).resolve()
    if resolved.is_relative_to(standins_root):
        return True
    manifest = resolved.parent / "manifest.json"
    if manifest.is_file():
        try:
            return bool(json.loads(manifest.read_text(encoding="utf-8")).get("standin"))
        except (OSError, ValueError):
            return False
    return False
