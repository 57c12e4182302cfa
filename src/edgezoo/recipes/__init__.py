"""Conversion recipes, registered by name (the `recipes:` field of a card).

A recipe turns fetched source files into one converted model plus its TIDL side files, verifies it against the
original and returns a RecipeOutput; `edgezoo.bundle` writes the bundle around it atomically.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from edgezoo.errors import RecipeError, did_you_mean
from edgezoo.recipes.base import RecipeInput, RecipeOutput

RecipeFn = Callable[[RecipeInput], RecipeOutput]

_RECIPE_MODULES = (
    "edgezoo.recipes.classification",
    "edgezoo.recipes.ssd_mobilenet",
    "edgezoo.recipes.ssd_resnet34",
)
_REGISTRY: dict[str, RecipeFn] = {}
_loaded = False


def register(name: str) -> Callable[[RecipeFn], RecipeFn]:
    def decorate(fn: RecipeFn) -> RecipeFn:
        _REGISTRY[name] = fn
        return fn

    return decorate


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for module in _RECIPE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    _loaded = True


def recipe_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_recipe(name: str) -> RecipeFn:
    _load_all()
    if name not in _REGISTRY:
        raise RecipeError(f"no recipe named {name!r}", hint=did_you_mean(name, _REGISTRY))
    return _REGISTRY[name]
