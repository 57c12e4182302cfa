"""The side files of a bundle: config.yaml (TI's model-zoo config schema) and runtime_options.yaml (TIDL options).

config.yaml is written so that TI's own tools load it as it is: edgeai-benchmark's config loader
(`pipeline_param_to_config`) calls `get_transform_base(**preprocess)`, the session with `**session` and the task's
post-processing with `**postprocess`, so every section holds exactly those keyword parameters, with TI's value
conventions (resize an int = short side, [h, w] = exact; interpolation an OpenCV flag, null = linear; mean/scale in
session.input_mean / input_scale; runtime options inline). edgezoo.tidl.ti_config checks a config against TI's
loader contract; docs/TI_CONFIG.md lists where edgezoo deliberately differs from TI's model-zoo configs.

runtime_options.yaml is a convenience copy of the TIDL options (edgeai-tidl-tools key names) without the loader's
`info` block. TI's recommended quantization options are the defaults; a recipe's `runtime_options`
(object_detection:*, deny_list:*) are merged over them, and the manifest names every default a recipe changed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from edgezoo.core.errors import RecipeError
from edgezoo.core.report import shortest_float32
from edgezoo.datasets.coco_categories import COCO_CATEGORIES
from edgezoo.zoo.schema import ModelCard, ModelFormat, Target

# TI's recommended options for an 8-bit import of these models (edgeai-benchmark core/runtime_options.py defaults,
# settings_base.yaml calibration 12/12; TI's loader takes the smaller of its settings' and the config's frames).
# quantization_scale_type 4 (asymmetric per-channel): TI's loader lowers it to 1 on TDA4VM, which lacks it.
DEFAULT_RUNTIME_OPTIONS: dict[str, Any] = {
    "tensor_bits": 8,
    "accuracy_level": 1,
    "debug_level": 0,
    "advanced_options:pre_batchnorm_fold": 1,
    "advanced_options:calibration_frames": 12,
    "advanced_options:calibration_iterations": 12,
    "advanced_options:quantization_scale_type": 4,
    "advanced_options:activation_clipping": 1,
    "advanced_options:weight_clipping": 1,
    "advanced_options:bias_calibration": 1,
    "advanced_options:add_data_convert_ops": 3,
    "advanced_options:output_feature_16bit_names_list": "",
    "advanced_options:params_16bit_names_list": "",
}
# edgeai-benchmark's loader (2024 releases) reads runtime_options.info.prequantized_model_type; null = float model.
LOADER_INFO = {"info": {"prequantized_model_type": None}}
SESSION_NAMES = {Target.TFLITE: "tflitert", Target.ONNX: "onnxrt"}
MODEL_NAMES = {Target.TFLITE: "model.tflite", Target.ONNX: "model.onnx"}
# TI's metric names for the reference accuracy, and the factor to percent (cards hold mAP as MLPerf's fraction).
_METRIC_KEYS = {"top1": "accuracy_top1%", "map": "accuracy_ap[.5:.95]%"}
_PERCENT = {"top1": 1.0, "map": 100.0}
SMALLEST_FLOAT32 = 1e-45  # the smallest positive float32 (a subnormal), shortest decimal
# model_info.model_shortlist: TI's runs select only configs whose value is <= the settings' (100 by default, 10 for
# TI's smallest preset); without one, a config is never selected ("completed: 0/0").
MODEL_SHORTLIST = 10
# OpenCV's flags, as TI's cv2 backend takes them (null = cv2.INTER_LINEAR).
CV2_INTERPOLATION: dict[str, int | None] = {"linear": None, "area": 3}
# TI's box formatter for (ymin, xmin, ymax, xmax) outputs, as TI's SSD-MobileNet config writes it.
YXYX_TO_XYXY = {"name": "DetectionYXYX2XYXY", "src_indices": [1, 0, 3, 2], "dst_indices": [0, 1, 2, 3]}


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
    """runtime_options.yaml: TI's recommended defaults with the recipe's options over them."""
    return deep_merge(DEFAULT_RUNTIME_OPTIONS, recipe_options)


PROTOTXT = "meta_arch.prototxt"  # the meta-architecture file of an ONNX SSD bundle
# TIDL's object_detection:meta_arch_type values edgezoo writes.
META_ARCH_TFLITE_SSD = 1  # a TFLite SSD ending in TFLite_Detection_PostProcess (TIDL reads the op's options)
META_ARCH_ONNX_SSD = 3  # an ONNX SSD cut at its heads, the rest described by meta_arch.prototxt (caffe_ssd)


def ssd_runtime_options(meta_arch_type: int, *, confidence: float, nms: float, top_k: int, keep_top_k: int,
                        prototxt: str | None = None) -> dict[str, Any]:
    """TIDL's SSD detection options, the one place they are spelt: the meta-architecture (and its prototxt for an
    ONNX SSD), the confidence and NMS thresholds, candidates per class before NMS and detections kept after it."""
    return {"object_detection:meta_arch_type": meta_arch_type,
            **({"object_detection:meta_layers_names_list": prototxt} if prototxt else {}),
            "object_detection:confidence_threshold": confidence, "object_detection:nms_threshold": nms,
            "object_detection:top_k": top_k, "object_detection:keep_top_k": keep_top_k}


def with_runtime_options(config: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """config.yaml with the runtime options inline in session.runtime_options (TI's loader iterates that mapping)."""
    out = copy.deepcopy(dict(config))
    session = out.setdefault("session", {})
    session["runtime_options"] = {**dict(options), **copy.deepcopy(LOADER_INFO)}
    return out


def runtime_options_manifest(recipe_options: Mapping[str, Any]) -> dict[str, Any]:
    """What the manifest says about the options: TI's defaults, and which of them the recipe changed."""
    changed = {key: {"ti_recommended": DEFAULT_RUNTIME_OPTIONS[key], "recipe": value}
               for key, value in recipe_options.items()
               if key in DEFAULT_RUNTIME_OPTIONS and value != DEFAULT_RUNTIME_OPTIONS[key]}
    return {"defaults": "TI's recommended quantization options (docs/TI_CONFIG.md)", "recipe_changed": changed,
            "recipe_added": sorted(k for k in recipe_options if k not in DEFAULT_RUNTIME_OPTIONS)}


def _listify(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values] * (3 if len(values) == 1 else 1)


def target_layout(card: ModelCard, target: Target) -> str:
    """The converted model's input layout: the card's spec for the target format, else the TF one."""
    fmt = ModelFormat(target.value)
    spec = card.formats.get(fmt) or card.formats.get(ModelFormat.TF) or next(iter(card.formats.values()))
    layout = spec.inputs[0].layout
    return layout if layout in ("NHWC", "NCHW") else card.preprocess.layout


def preprocess_section(resize: int | Sequence[int], crop: int | Sequence[int], layout: str, *,
                       reverse_channels: bool = False, interpolation: str = "linear") -> dict[str, Any]:
    """Exactly get_transform_base's keyword parameters, in TI's order and conventions (backend cv2: MLPerf's)."""
    return {"resize": resize if isinstance(resize, int) else list(resize),
            "crop": crop if isinstance(crop, int) else list(crop),
            "data_layout": layout, "reverse_channels": reverse_channels, "backend": "cv2",
            "interpolation": CV2_INTERPOLATION[interpolation], "resize_with_pad": False, "pad_color": 0}


def session_section(target: Target, model_id: str, layout: str, mean: Sequence[float],
                    scale: Sequence[float]) -> dict[str, Any]:
    """The session's keys as TI's configs write them (runtime_options are added when the bundle is written)."""
    return {"session_name": SESSION_NAMES[target], "model_id": model_id, "model_path": MODEL_NAMES[target],
            "input_optimization": False, "input_data_layout": layout,
            "input_mean": _listify(mean), "input_scale": _listify(scale)}


def detection_threshold(score_threshold: float) -> float:
    """postprocess.detection_threshold reproducing a model's reference score threshold in TI's pipeline.

    TI's DetectionFilter keeps scores >= the config's value, and a missing or 0 value means its settings' 0.3
    (`threshold or settings`): a reference that keeps every score (0) is written as the smallest positive float32,
    which keeps every detection with a positive score."""
    value = shortest_float32(float(score_threshold))
    return value if value > 0 else SMALLEST_FLOAT32


def detection_postprocess(*, formatter: Mapping[str, Any] | None = None, reshape_list: list | None = None,
                          shuffle_indices: list[int] | None = None, squeeze_axis: int | None = 0,
                          threshold: float | None = None) -> dict[str, Any]:
    """get_transform_detection_base's parameters as TI's model-zoo configs write them (boxes normalised), with
    `detection_threshold` = the model's reference score threshold when given (detection_threshold())."""
    section = {"reshape_list": reshape_list, "formatter": dict(formatter) if formatter else None,
               "resize_with_pad": False, "normalized_detections": True, "shuffle_indices": shuffle_indices,
               "squeeze_axis": squeeze_axis, "ignore_index": None, "logits_bbox_to_bbox_ls": False,
               "keypoint": False, "object6dpose": False}
    if threshold is not None:
        section["detection_threshold"] = detection_threshold(threshold)
    return section


def outputs_postprocess(outputs: Sequence[str], *, yxyx: bool, threshold: float | None = None) -> dict[str, Any]:
    """TI's post-processing for a detector's own outputs, told apart by name (boxes, labels/classes, scores[, count]):
    TI reshapes in the model's output order, then shuffles into (boxes, labels, scores); yxyx boxes get TI's
    formatter. RecipeError when the names do not say which output is which (TI would misread them)."""
    words = (("box",), ("label", "class"), ("score",))
    order = [next((i for i, name in enumerate(outputs) if any(w in name.lower() for w in ws)), None)
             for ws in words]
    if None in order or len(outputs) not in (3, 4):
        raise RecipeError(f"outputs {list(outputs)}: expected boxes, labels (or classes) and scores",
                          hint="TI's post-processing needs the three, named so")
    reshape = [[-1, 4] if i == order[0] else [-1, 1] for i in range(3)] if len(outputs) == 3 else None
    return detection_postprocess(formatter=YXYX_TO_XYXY if yxyx else None, reshape_list=reshape,
                                 squeeze_axis=None if reshape else 0,
                                 shuffle_indices=None if order == [0, 1, 2] else order, threshold=threshold)


def detector_config(target: Target, model_id: str, layout: str, size: Sequence[int], mean: Sequence[float],
                    scale: Sequence[float], detector: Mapping[str, Any]) -> dict[str, Any]:
    """config.yaml in TI's schema for a user's own detector (no card): direct resize to the input size, the stated
    or measured normalisation, the route's `detector` sections (postprocess, metric).

    The dataset keys say COCO because TI's detection loaders read COCO-format data; the labels stay the model's
    own (label_offset_pred as the route states), not COCO ids."""
    return {"task_type": "detection", "dataset_category": "coco", "calibration_dataset": "coco",
            "input_dataset": "coco", "preprocess": preprocess_section(list(size), list(size), layout),
            "session": session_section(target, model_id, layout, _rgb(mean), _rgb(scale)),
            "model_info": {"model_shortlist": MODEL_SHORTLIST}, **detector}


def _rgb(values: Sequence[float]) -> list[float]:
    """One value per channel, as TI's session writes input_mean / input_scale (one number stands for all three)."""
    return list(values) * 3 if len(values) == 1 else list(values)


def coco80_label_map() -> dict[int, int]:
    """Contiguous labels 1..80 -> COCO category ids (0 = background stays 0), as TI writes label_offset_pred."""
    return {0: 0, **{index: cat_id for index, (cat_id, _) in enumerate(COCO_CATEGORIES, start=1)}}


def shifted_label_map(offset: int, first: int, last: int) -> dict[int, int]:
    """label -> label + offset for first..last (TI's SSD-MobileNet config: 0-based 90-class output -> COCO ids)."""
    return {label: label + offset for label in range(first, last + 1)}


def card_config(card: ModelCard, target: Target) -> dict[str, Any]:
    """config.yaml defaults from the card (recipes add their post-processing and label maps)."""
    pre = card.preprocess
    layout = target_layout(card, target)
    crop = pre.crop if pre.crop else pre.resize
    metric = card.accuracy.metric.lower()
    metric_key = _METRIC_KEYS.get(metric, card.accuracy.metric)
    factor = _PERCENT.get(metric, 1.0)
    return {
        "task_type": card.task.value,
        "dataset_category": card.labels.dataset,
        "calibration_dataset": card.labels.dataset,
        "input_dataset": card.labels.dataset,
        "preprocess": preprocess_section(pre.resize, crop, layout, reverse_channels=pre.color == "BGR",
                                         interpolation=pre.interpolation),
        "session": session_section(target, card.id, layout, pre.mean, pre.scale),
        "postprocess": {},
        "metric": {"label_offset_pred": card.labels.offset},
        "model_info": {"metric_reference": {metric_key: round(card.accuracy.reference * factor, 6)},
                       "mlperf_target": {metric_key: round(card.accuracy.target * factor, 6)},
                       "model_shortlist": MODEL_SHORTLIST},
    }


# --graph models: what the user may state with --param (export/graph.py: CONFIG_PARAMS) so that config.yaml can be TI's.
GRAPH_TASKS = ("classification",)  # the task whose post-processing needs nothing model-specific


def graph_config(target: Target, model_id: str, inputs: Mapping[str, Sequence[int]], layout: str,
                 params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """config.yaml for `export --graph`, and why it cannot be in TI's schema (empty: it is).

    A config TI's loader would misread is never written: without a stated normalisation TI's session would feed
    raw pixels, so such a config stays `task_type: tensors` with no preprocessing, which TI's loader refuses loudly.
    """
    reasons = []
    shapes = list(inputs.values())
    channel_axis = 3 if layout == "NHWC" else 1
    if len(shapes) != 1 or len(shapes[0]) != 4 or shapes[0][channel_axis] != 3:
        reasons.append(f"the inputs {dict(inputs)} are not one {layout} 3-channel image (TI's preprocessing makes "
                       "exactly that)")
    task = params.get("task_type")
    if task is not None and task not in GRAPH_TASKS:
        raise RecipeError(f"--param task_type={task!r}: expected one of {list(GRAPH_TASKS)}",
                          hint="leave it out for a model that is not an image classifier")
    if task is None:
        reasons.append("no task stated (--param task_type=classification for an image classifier)")
    stated = {key: _graph_triple(params, key) for key in ("input_mean", "input_scale")}
    if None in stated.values():
        reasons.append("the input normalisation is not stated (--param input_mean=[R,G,B] --param "
                       "input_scale=[R,G,B], x' = (x - mean) * scale)")
    session = {"session_name": SESSION_NAMES[target], "model_id": model_id, "model_path": MODEL_NAMES[target],
               "input_data_layout": layout}
    if reasons:
        return {"task_type": "tensors", "session": session}, reasons
    height, width = (shapes[0][1], shapes[0][2]) if layout == "NHWC" else (shapes[0][2], shapes[0][3])
    resize = _graph_size(params, "resize", [height, width])
    crop = _graph_size(params, "crop", [height, width])
    reverse = params.get("reverse_channels", False)
    if not isinstance(reverse, bool):
        raise RecipeError(f"--param reverse_channels={reverse!r}: expected true or false")
    return {
        "task_type": task, "dataset_category": "imagenet", "calibration_dataset": "imagenet",
        "input_dataset": "imagenet",
        "preprocess": preprocess_section(resize, crop, layout, reverse_channels=reverse),
        "session": session_section(target, model_id, layout, stated["input_mean"], stated["input_scale"]),
        "postprocess": {}, "metric": {"label_offset_pred": 0}, "model_info": {"model_shortlist": MODEL_SHORTLIST},
    }, []


def _graph_triple(params: Mapping[str, Any], key: str) -> list[float] | None:
    if key not in params:
        return None
    value = params[key]
    values = [value] if isinstance(value, (int, float)) else value
    if (not isinstance(values, list) or len(values) not in (1, 3)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        raise RecipeError(f"--param {key}={value!r}: expected a number or [R, G, B]", hint="e.g. [127.5,127.5,127.5]")
    if key == "input_scale" and any(v <= 0 for v in values):
        raise RecipeError(f"--param {key}={value!r}: scales must be positive")
    return _listify(values)


def _graph_size(params: Mapping[str, Any], key: str, default: list[int]) -> int | list[int]:
    value = params.get(key, default)
    ok = (isinstance(value, int) and not isinstance(value, bool) and value > 0) or (
        isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value))
    if not ok:
        raise RecipeError(f"--param {key}={value!r}: expected a positive int (short side) or [height, width]")
    return value
