"""What a fetch returns besides the path: where the bytes came from and their digest (for tables and manifests)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from edgezoo.standins import STANDIN_BANNER


class Source(str, Enum):
    CACHE = "cache"  # a verified copy already in the cache
    DOWNLOAD = "download"  # the card's URL (or one of the card's mirrors)
    MIRROR = "mirror"  # the user's --mirror folder or URL
    STANDIN_CACHE = f"{STANDIN_BANNER} (cache)"
    STANDIN_BUILT = f"{STANDIN_BANNER} (built)"
    UNPACKED = "unpacked"  # an archive member, safe-unpacked into the cache
    STANDIN_UNPACKED = f"{STANDIN_BANNER} (unpacked)"


@dataclass(frozen=True)
class Fetched:
    card_id: str
    name: str  # the card's file name, or "archive::member"
    path: Path
    size: int
    sha256: str
    source: Source
    origin: str  # URL, mirror location, stand-in builder or archive it came from
    standin: bool = False
