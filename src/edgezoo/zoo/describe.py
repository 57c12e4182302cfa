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
