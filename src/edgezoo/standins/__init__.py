"""Stand-in builders: files with the published format, names, shapes and structure, and realistic random weights.

Builders register by name (the `standin:` field of a card's file). `edgezoo fetch --standin` builds them into a cache
namespace of their own (see edgezoo.fetch); nothing built here is ever mistaken for a published file.

A builder is `build(dest: Path, variant: StandinVariant, seed: int) -> None` and must write exactly `dest`
(an archive builder writes the archive). Bump `version` when the output changes: it is part of the cache key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from edgezoo.core.errors import FetchError
from edgezoo.core.registry import LazyRegistry

STANDIN_BANNER = "STAND-IN"


class StandinVariant(str, Enum):
    FULL = "full"  # the published layer sizes
    REDUCED = "reduced"  # same names and structure, narrow layers: for fast tests


BuildFn = Callable[[Path, StandinVariant, int], None]


@dataclass(frozen=True)
class StandinBuilder:
    name: str
    build: BuildFn
    version: int
    description: str


# Every module of this package is imported on the first lookup (they import heavy libraries only inside `build`),
# so a new builder is a new module and nothing else.
_REGISTRY: LazyRegistry[StandinBuilder] = LazyRegistry("stand-in builder", __name__, FetchError)


def register(name: str, *, version: int = 1, description: str = "") -> Callable[[BuildFn], BuildFn]:
    def decorate(fn: BuildFn) -> BuildFn:
        summary = description or (fn.__doc__ or "").strip().split("\n")[0]
        _REGISTRY.add(name, StandinBuilder(name, fn, version, summary))
        return fn

    return decorate


def builders() -> dict[str, StandinBuilder]:
    return _REGISTRY.all()


def get_builder(name: str) -> StandinBuilder:
    return _REGISTRY.get(name)
