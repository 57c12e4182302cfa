"""A name -> entry registry filled by decorators in modules that are imported only when first needed.

Recipes and stand-in builders register themselves at import time, but importing them at CLI start would cost
start-up time for nothing; the registry imports its modules on the first lookup instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Generic, TypeVar

from edgezoo.core.errors import EdgezooError, did_you_mean

T = TypeVar("T")


class LazyRegistry(Generic[T]):
    def __init__(self, kind: str, modules: Sequence[str], error: type[EdgezooError]) -> None:
        self.kind = kind  # "recipe", "stand-in builder": used in messages
        self._modules = tuple(modules)
        self._error = error
        self._entries: dict[str, T] = {}
        self._loaded = False

    def add(self, name: str, entry: T) -> None:
        """Register `entry`; a different entry under a taken name is a programming error (re-importing the same
        module registers equal entries again, which is fine)."""
        if name in self._entries and self._entries[name] != entry:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry

    def _load(self) -> None:
        if not self._loaded:
            for module in self._modules:
                importlib.import_module(module)
            self._loaded = True

    def all(self) -> dict[str, T]:
        self._load()
        return dict(self._entries)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._entries:
            raise self._error(f"no {self.kind} named {name!r}", hint=did_you_mean(name, self._entries))
        return self._entries[name]
