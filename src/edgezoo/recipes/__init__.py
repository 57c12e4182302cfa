"""Conversion recipes, registered by name (the `recipes:` field of a card).

A recipe turns fetched source files into one converted model plus its TIDL side files, verifies it against the
original and returns a RecipeOutput; `edgezoo.bundle` writes the bundle around it atomically.
"""

from __future__ import annotations

from collections.abc import Callable

from edgezoo.errors import RecipeError
from edgezoo.registry import LazyRegistry
from edgezoo.recipes.base import RecipeInput, RecipeOutput

RecipeFn = Callable[[RecipeInput], RecipeOutput]

_RECIPE_MODULES = (
    "edgezoo.recipes.classification",
    "edgezoo.recipes.ssd_mobilenet",
    "edgezoo.recipes.ssd_resnet34",
)
_REGISTRY: LazyRegistry[RecipeFn] = LazyRegistry("recipe", _RECIPE_MODULES, RecipeError)


def register(name: str) -> Callable[[RecipeFn], RecipeFn]:
    def decorate(fn: RecipeFn) -> RecipeFn:
        _REGISTRY.add(name, fn)
        return fn

    return decorate


def recipe_names() -> list[str]:
    return sorted(_REGISTRY.all())


def get_recipe(name: str) -> RecipeFn:
    return _REGISTRY.get(name)
