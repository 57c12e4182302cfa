"""The side files of a bundle: runtime_options.yaml (TIDL options) and config.yaml (TI model-zoo shape).

config.yaml follows the layout of TI's edgeai model-zoo configs (task_type, preprocess, session, postprocess, metric,
model_info) so the bundle drops into that tooling; the recipe's own `config` entries are merged over these defaults
(detection recipes add their postprocess formatter, reshape lists, label maps).

runtime_options.yaml holds the TIDL compilation options with edgeai-tidl-tools key names; a recipe's
`runtime_options` (object_detection:*, deny_list:*) are merged over the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgezoo.zoo.schema import ModelCard, ModelFormat, Target

# edgeai-tidl-tools defaults for an 8-bit import (accuracy_level 1 = advanced calibration).
DEFAULT_RUNTIME_OPTIONS: dict[str, Any] = {
    "tensor_bits": 8,
    "accuracy_level": 1,
    "advanced_options:calibration_frames": 12,
    "advanced_options:calibration_iterations": 12,
    "debug_level": 0,
}
SESSION_NAMES = {Target.TFLITE: "tflitert", Target.ONNX: "onnxrt"}
MODEL_NAMES = {Target.TFLITE: "model.tflite", Target.ONNX: "model.onnx"}
# TI's metric names for the reference accuracy.
_METRIC_KEYS = {"top1": "accuracy_top1%", "map": "accuracy_ap[.5:.95]%"}


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, recursing into mappings (a recipe overrides single keys, not whole sections)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def runtime_options(recipe_options: Mapping[str, Any]) -> dict[str, Any]:
    return deep_merge(DEFAULT_RUNTIME_OPTIONS, recipe_options)


def _listify(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values] * (3 if len(values) == 1 else 1)


def target_layout(card: ModelCard, target: Target) -> str:
    """The converted model's input layout: the card's spec for the target format, else the TF one."""
    fmt = ModelFormat(target.value)
    spec = card.formats.get(fmt) or card.formats.get(ModelFormat.TF) or next(iter(card.formats.values()))
    layout = spec.inputs[0].layout
    return layout if layout in ("NHWC", "NCHW") else card.preprocess.layout


def card_config(card: ModelCard, target: Target) -> dict[str, Any]:
    """config.yaml defaults from the card."""
    pre = card.preprocess
    layout = target_layout(card, target)
    mean, scale = _listify(pre.mean), _listify(pre.scale)
    resize = list(pre.resize) if isinstance(pre.resize, tuple) else pre.resize
    metric_key = _METRIC_KEYS.get(card.accuracy.metric.lower(), card.accuracy.metric)
    return {
        "task_type": card.task.value,
        "dataset_category": card.labels.dataset,
        "preprocess": {
            "resize": resize,
            "crop": pre.crop if pre.crop else resize,
            "data_layout": layout,
            "resize_with_pad": False,
            "reverse_channels": pre.color == "BGR",
            "backend": "cv2",
            "interpolation": pre.interpolation,
            "resize_mode": pre.resize_mode,
            "mean": mean,
            "scale": scale,
        },
        "session": {
            "session_name": SESSION_NAMES[target],
            "model_path": MODEL_NAMES[target],
            "runtime_options": "runtime_options.yaml",
            "input_data_layout": layout,
            "input_mean": mean,
            "input_scale": scale,
        },
        "postprocess": {},
        "metric": {"label_offset_pred": card.labels.offset},
        "model_info": {
            "model_id": card.id,
            "metric_reference": {metric_key: card.accuracy.reference},
            "mlperf_target": {metric_key: card.accuracy.target},
        },
    }


def generic_config(target: Target, layout: str, task: str = "tensors") -> dict[str, Any]:
    """config.yaml for `export --graph` (no card: preprocessing is the user's, so it stays unspecified)."""
    return {
        "task_type": task,
        "preprocess": {"data_layout": layout, "resize_with_pad": False, "backend": "cv2"},
        "session": {"session_name": SESSION_NAMES[target], "model_path": MODEL_NAMES[target],
                    "runtime_options": "runtime_options.yaml", "input_data_layout": layout},
        "postprocess": {},
        "metric": {},
        "model_info": {},
    }
