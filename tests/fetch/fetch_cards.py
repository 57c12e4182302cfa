"""Test-only model cards built in code (parse_card on a dict), pointing at the loopback server."""

from __future__ import annotations

import hashlib
from typing import Any

from edgezoo.zoo.parse import parse_card
from edgezoo.zoo.schema import ModelCard


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def file_entry(name: str, url: str, data: bytes | None = None, **extra: Any) -> dict[str, Any]:
    """A card `files[]` entry; with `data`, size and sha256 are those of `data`."""
    entry: dict[str, Any] = {"name": name, "url": url, "checksum": "unknown"}
    if data is not None:
        entry.update(size=len(data), checksum=sha256(data))
    entry.update(extra)
    return entry


def make_card(*files: dict[str, Any], card_id: str = "fetch-test") -> ModelCard:
    """A minimal valid card whose onnx format uses the first file."""
    return parse_card(card_dict(*files, card_id=card_id), source="<test>")


def card_dict(*files: dict[str, Any], card_id: str = "fetch-test") -> dict[str, Any]:
    return {
        "id": card_id, "title": "fetch test card", "task": "classification", "files": list(files),
        "formats": {"onnx": {"file": files[0]["name"],
                             "inputs": [{"name": "x", "shape": [1, 3], "dtype": "float32"}],
                             "outputs": [{"name": "y", "shape": [1, 2], "dtype": "float32"}]}},
        "preprocess": {"resize": 4, "resize_mode": "direct", "interpolation": "linear", "color": "RGB",
                       "mean": [0], "scale": [1], "layout": "NCHW"},
        "labels": {"dataset": "imagenet", "num_classes": 2, "offset": 0},
        "accuracy": {"metric": "top1", "reference": 1.0, "target": 0.99, "target_fraction": 0.99},
        "recipes": {"onnx": {"name": "none"}},
    }
