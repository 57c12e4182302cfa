"""Conversion recipes, registered by name (the `recipes:` field of a card) with the parameters they take.

A recipe turns fetched source files into one converted model plus its TIDL side files, verifies it against the
original and returns a RecipeOutput; edgezoo.export runs it and writes the bundle around it atomically. Each recipe
declares its parameters (recipes/params.py): export validates the card's and the user's values against them before
any work, and calling a registered recipe validates again, so the body always receives typed, range-checked values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgezoo import zoo
from edgezoo.core.errors import ConfigError, RecipeError
from edgezoo.core.registry import LazyRegistry
from edgezoo.graphs import own_outputs
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.params import ParamError, ParamSpec, describe, validate_params
from edgezoo.zoo.schema import ModelCard

RecipeFn = Callable[[RecipeInput], RecipeOutput]
# The recipe's model made again with calibration frames (full-integer int8, `quantize --scheme tflite-int8`), for
# recipes whose model a plain conversion of the original cannot re-make (graph surgery): (input, frames) -> .tflite.
Calibrated = Callable[[RecipeInput, Callable[[], Iterable[list[Any]]]], Path]
# A check across parameters that needs no source file (e.g. the default-box spec); raises ConfigError/RecipeError.
Precheck = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Recipe:
    name: str
    fn: RecipeFn
    params: tuple[ParamSpec, ...] = ()
    precheck: Precheck | None = None
    summary: str = ""  # one line for `edgezoo info`
    calibrated: Calibrated | None = None

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


# Every module of this package is imported on the first lookup (a new recipe is a new module, nothing else).
_REGISTRY: LazyRegistry[Recipe] = LazyRegistry("recipe", __name__, RecipeError)


def register(name: str, params: Sequence[ParamSpec] = (), precheck: Precheck | None = None, summary: str = "",
             calibrated: Calibrated | None = None) -> Callable[[RecipeFn], RecipeFn]:
    """Register `fn` as recipe `name` (`summary`: one line for `edgezoo info`, default the first of fn's docstring)."""
    def decorate(fn: RecipeFn) -> RecipeFn:
        line = summary or (fn.__doc__ or "").strip().split("\n")[0]
        _REGISTRY.add(name, Recipe(name, fn, tuple(params), precheck, line, calibrated))
        return fn

    return decorate


def recipe_names() -> list[str]:
    return sorted(_REGISTRY.all())


def get_recipe(name: str) -> Recipe:
    return _REGISTRY.get(name)


def recipe_parameters(card: ModelCard) -> dict[str, dict[str, Any]]:
    """target -> {"recipe": name, "params": [{name, type, range, default, meaning}]} with the card's values as the
    defaults they are (imports the recipe modules: for `edgezoo info`, not for `list`)."""
    out: dict[str, dict[str, Any]] = {}
    for target, spec in card.recipes.items():
        rows = describe(get_recipe(spec.name).params)
        for row in rows:
            if row["name"] in spec.params:
                row["default"] = f"{spec.params[row['name']]} (card)"
        out[target.value] = {"recipe": spec.name, "params": rows}
    return out


def recipe_descriptions() -> list[dict[str, Any]]:
    """Every registered recipe (the zoo's and the --graph routes'): name, summary, the cards that use it, and its
    parameters as `describe` gives them."""
    users: dict[str, list[str]] = {}
    for card in zoo.all_cards():
        for target, spec in card.recipes.items():
            users.setdefault(spec.name, []).append(f"{card.id} ({target.value})")
    return [{"recipe": r.name, "summary": r.summary, "cards": users.get(r.name, []), "params": describe(r.params)}
            for r in (get_recipe(name) for name in recipe_names())]
