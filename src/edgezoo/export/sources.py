"""Local copies of a card's source files for a recipe, fetched on demand and recorded for the manifest.

Recipes ask for what they need (`RecipeInput.source(file, member)`); this resolver gets it through edgezoo.fetch
(verified published files, or stand-ins in their own cache namespace) and keeps each file's sha256 and origin for
the bundle's manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgezoo import fetch
from edgezoo.standins import StandinVariant
from edgezoo.zoo.schema import ModelCard


class SourceResolver:
    def __init__(self, card: ModelCard, *, mirror: str | None = None, offline: bool = False, standin: bool = False,
                 variant: StandinVariant = StandinVariant.FULL) -> None:
        self.card, self.mirror, self.offline, self.standin, self.variant = card, mirror, offline, standin, variant
        self._seen: dict[str, dict[str, Any]] = {}

    def resolve(self, file: str, member: str | None = None) -> Path:
        key = f"{file}::{member}" if member else file
        if key in self._seen:
            return Path(self._seen[key]["path"])
        kwargs = dict(mirror=self.mirror, offline=self.offline, standin=self.standin, variant=self.variant)
        if member is None:
            got = fetch.resolve_file(self.card, file, **kwargs)
        else:
            archive = fetch.resolve_file(self.card, file, **kwargs)
            self._record(file, archive)
            got = fetch.resolve_member(self.card, file, member, **kwargs)
        self._record(key, got)
        return Path(got.path)

    def _record(self, key: str, got: Any) -> None:
        self._seen.setdefault(key, {
            "file": key, "path": str(got.path), "size": got.size, "sha256": got.sha256,
            "source": getattr(got.source, "value", str(got.source)), "origin": got.origin, "standin": got.standin,
        })

    def describe(self) -> list[dict[str, Any]]:
        return list(self._seen.values())
