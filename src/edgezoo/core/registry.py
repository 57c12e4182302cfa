"""A name -> entry registry filled by decorators in the modules of one package, imported only when first needed.

Recipes and stand-in builders register themselves at import time, but importing them at CLI start would cost
start-up time for nothing; the registry imports every module of its package on the first lookup instead, so a new
recipe or builder is a new module and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, TypeVar

from edgezoo.core.errors import EdgezooError, did_you_mean

T = TypeVar("T")


class LazyRegistry(Generic[T]):
    def __init__(self, kind: str, package: str, error: type[EdgezooError]) -> None:
        self.kind = kind  # "recipe", "stand-in builder": used in messages
        self._package = package
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
            package = importlib.import_module(self._package)
            for module in pkgutil.iter_modules(package.__path__, f"{self._package}."):
                importlib.import_module(module.name)
            self._loaded = True

    def all(self) -> dict[str, T]:
        self._load()
        return dict(self._entries)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._entries:
            raise self._error(f"no {self.kind} named {name!r}", hint=did_you_mean(name, self._entries))
        return self._entries[name]
