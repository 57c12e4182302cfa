"""Plain-data views of cards (for --json and manifests)."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from edgezoo.zoo.schema import Checksum, ModelCard


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Checksum):
        return str(value)
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "items"):
        return {(_plain(k) if isinstance(k, Enum) else k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def card_to_dict(card: ModelCard) -> dict[str, Any]:
    data = _plain(card)
    data.pop("source", None)
    return data


def recipe_parameters(card: ModelCard) -> dict[str, dict[str, Any]]:
    """target -> {"recipe": name, "params": [{name, type, range, default, meaning}]} with the card's values as the
    defaults they are (imports the recipe modules: for `edgezoo info`, not for `list`)."""
    from edgezoo.recipes import get_recipe, recipe_names
    from edgezoo.recipes.params import describe

    available = set(recipe_names())
    out: dict[str, dict[str, Any]] = {}
    for target, spec in card.recipes.items():
        rows = describe(get_recipe(spec.name).params) if spec.name in available else []
        for row in rows:
            if row["name"] in spec.params:
                row["default"] = f"{spec.params[row['name']]} (card)"
        out[target.value] = {"recipe": spec.name, "params": rows}
    return out
