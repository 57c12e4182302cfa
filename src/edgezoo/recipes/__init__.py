"""Conversion recipes, registered by name (the `recipes:` field of a card) with the parameters they take.

A recipe turns fetched source files into one converted model plus its TIDL side files, verifies it against the
original and returns a RecipeOutput; `edgezoo.bundle.staging` writes the bundle around it atomically. Each recipe declares
its parameters (recipes/params.py): export validates the card's and the user's values against them before any work,
and calling a registered recipe validates again, so the body always receives typed, range-checked values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgezoo.core.errors import ConfigError, RecipeError
from edgezoo.graphs import own_outputs
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.params import ParamError, ParamSpec, describe, validate_params
from edgezoo.core.registry import LazyRegistry
from edgezoo.zoo.schema import ModelCard

RecipeFn = Callable[[RecipeInput], RecipeOutput]
# A check across parameters that needs no source file (e.g. the default-box spec); raises ConfigError/RecipeError.
Precheck = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Recipe:
    name: str
    fn: RecipeFn
    params: tuple[ParamSpec, ...] = ()
    precheck: Precheck | None = None

    def validate(self, given: Mapping[str, Any], where: str = "",
                 origin: Callable[[str], str] = lambda n: f"param {n}") -> dict[str, Any]:
        """The typed parameters (defaults filled in); ParamError (exit 2) for anything unknown or invalid."""
        where = f"{where + ': ' if where else ''}recipe {self.name}"
        typed = validate_params(self.params, given, where, origin)
        if self.precheck is not None:
            try:
                self.precheck(typed)
            except (ConfigError, RecipeError) as exc:
                raise ParamError(f"{where}: {exc.message}", hint=exc.hint) from None
        return typed

    def __call__(self, rin: RecipeInput) -> RecipeOutput:
        params = self.validate(rin.params, rin.card.id if rin.card is not None else "")
        with own_outputs(rin.workdir):  # a model the recipe writes there and cannot load is our doing, not a download
            return self.fn(dataclasses.replace(rin, params=params))


_RECIPE_MODULES = (
    "edgezoo.recipes.classification",
    "edgezoo.recipes.ssd_mobilenet",
    "edgezoo.recipes.ssd_mobilenet_onnx",
    "edgezoo.recipes.ssd_resnet34",
    "edgezoo.recipes.od_api_ssd",
)
_REGISTRY: LazyRegistry[Recipe] = LazyRegistry("recipe", _RECIPE_MODULES, RecipeError)


def register(name: str, params: Sequence[ParamSpec] = (), precheck: Precheck | None = None
             ) -> Callable[[RecipeFn], RecipeFn]:
    def decorate(fn: RecipeFn) -> RecipeFn:
        _REGISTRY.add(name, Recipe(name, fn, tuple(params), precheck))
        return fn

    return decorate


def recipe_names() -> list[str]:
    return sorted(_REGISTRY.all())


def get_recipe(name: str) -> Recipe:
    return _REGISTRY.get(name)


def recipe_parameters(card: ModelCard) -> dict[str, dict[str, Any]]:
    """target -> {"recipe": name, "params": [{name, type, range, default, meaning}]} with the card's values as the
    defaults they are (imports the recipe modules: for `edgezoo info`, not for `list`)."""
    available = set(recipe_names())
    out: dict[str, dict[str, Any]] = {}
    for target, spec in card.recipes.items():
        rows = describe(get_recipe(spec.name).params) if spec.name in available else []
        for row in rows:
            if row["name"] in spec.params:
                row["default"] = f"{spec.params[row['name']]} (card)"
        out[target.value] = {"recipe": spec.name, "params": rows}
    return out
