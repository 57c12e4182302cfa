"""The model zoo: cards loaded from zoo/cards/*.yaml, looked up by id or alias."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from edgezoo.core.errors import CardError, UnknownModelError, did_you_mean
from edgezoo.zoo.parse import parse_card
from edgezoo.zoo.schema import (Checksum, FormatSpec, ModelCard, ModelFormat, PublishedFile, RecipeSpec, Target,
                                Task, TensorSpec)

CARDS_DIR = Path(__file__).parent / "cards"

__all__ = ["CARDS_DIR", "Checksum", "FormatSpec", "ModelCard", "ModelFormat", "PublishedFile", "RecipeSpec",
           "Target", "Task", "TensorSpec", "all_cards", "get_card", "load_card_file", "parse_card"]


def load_card_file(path: Path) -> ModelCard:
    """Load and validate one card file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CardError(f"{path.name}: not valid YAML: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise CardError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_card(data, source=str(path))


@lru_cache(maxsize=1)
def all_cards() -> tuple[ModelCard, ...]:
    """Every card in the zoo, sorted by id. Ids and aliases are checked for clashes."""
    cards = tuple(sorted((load_card_file(p) for p in CARDS_DIR.glob("*.yaml")), key=lambda c: c.id))
    seen: dict[str, str] = {}
    for card in cards:
        for key in (card.id, *card.aliases):
            if key in seen:
                raise CardError(f"{card.id}: id/alias {key!r} is already used by {seen[key]}")
            seen[key] = card.id
    return cards


def get_card(name: str) -> ModelCard:
    """The card whose id or alias is `name` (case-insensitive, '_' and '-' interchangeable)."""
    wanted = name.strip().lower().replace("_", "-")
    keys: dict[str, ModelCard] = {}
    for card in all_cards():
        for key in (card.id, *card.aliases):
            keys[key.lower().replace("_", "-")] = card
    if wanted in keys:
        return keys[wanted]
    raise UnknownModelError(f"unknown model {name!r}",
                            hint=did_you_mean(wanted, keys) + " ('edgezoo list' shows the zoo)")
