"""The quantization part of `edgezoo demo`: one classifier bundle through the TIDL preview, calibrated on and
scored against the stand-in dataset the accuracy part labelled with the original (kept short: no sensitivity)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgezoo.quantize.api import QuantizeResult, quantize_bundle

DEMO_MODEL, DEMO_TARGET, DEMO_FRAMES = "mobilenet-v1", "onnx", 8


def demo_quantization(exports: Sequence[Any], out: Path) -> QuantizeResult | None:
    """None when the demo exported no passing MobileNet ONNX bundle or built no dataset for it."""
    folder = next((Path(e.bundle) for e in exports if e.passed and e.model_id == DEMO_MODEL
                   and e.target.value == DEMO_TARGET), None)
    dataset = Path(out) / "datasets" / f"imagenet-{DEMO_MODEL}"
    if folder is None or not dataset.is_dir():
        return None
    return quantize_bundle(folder, dataset, scheme="tidl-preview", frames=DEMO_FRAMES, dataset=dataset)
