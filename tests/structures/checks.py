"""Measurements the structure tests (and anyone choosing a structure) make on a materialised file, with the runtimes
directly (ONNX Runtime, TensorFlow), independent of edgezoo's own runners."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.structures.inputs import InputSpec


@dataclass(frozen=True)
class Spread:
    """Per image: detections the model outputs, and how many of them score >= 0.5."""

    detections: list[int]
    confident: list[int]
    top_scores: list[float]

    def summary(self) -> str:
        return f"detections {self.detections}, confident {self.confident}"


def onnx_outputs(path: Path, spec: InputSpec, images: Sequence[np.ndarray], extra: Sequence[str] = ()) \
        -> list[dict[str, np.ndarray]]:
    """The model's outputs (and `extra` intermediate tensors) per image, with ONNX Runtime."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    for name in extra:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(None, {spec.name: spec.feed(image)}))) for image in images]


def onnx_spread(path: Path, spec: InputSpec, images: Sequence[np.ndarray], scores_output: str) -> Spread:
    runs = onnx_outputs(path, spec, images)
    scores = [r[scores_output].reshape(-1) for r in runs]
    return Spread([int(s.size) for s in scores], [int((s >= 0.5).sum()) for s in scores],
                  [float(s.max()) if s.size else 0.0 for s in scores])


def onnx_conv_stds(path: Path, spec: InputSpec, images: Sequence[np.ndarray]) -> dict[str, float]:
    """Standard deviation of every Conv's output over the images, by output name."""
    import onnx

    model = onnx.load(str(path))
    convs = [n.output[0] for n in model.graph.node if n.op_type == "Conv"]
    runs = onnx_outputs(path, spec, images, convs)
    return {name: float(np.concatenate([r[name].ravel() for r in runs]).std()) for name in convs}
