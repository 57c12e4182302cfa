"""Generate a caffe_ssd meta-architecture from the heads found in a graph and a card's default-box spec."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import CodeType, ScoreConverter
from edgezoo.ssd.onnx_heads import HeadSet
from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, prior_box_params, priors_per_location
from edgezoo.tidl.meta_arch.prototxt import CaffeSsd, DetectionOutputParam, MetaArch, NmsParam

# TIDL / edgeai-benchmark thresholds: accuracy (MLPerf's own post-processing) and TI's speed defaults.
# top_k: every prior for accuracy (Caffe caps candidates BEFORE NMS, the original caps AFTER it).
ACCURACY_THRESHOLDS = {"confidence_threshold": 0.05, "top_k": None, "keep_top_k": 200}
SPEED_THRESHOLDS = {"confidence_threshold": 0.3, "top_k": 200, "keep_top_k": 200}


@dataclass(frozen=True)
class Thresholds:
    confidence_threshold: float = 0.05
    nms_threshold: float = 0.5
    top_k: int = 200  # candidates per class before NMS
    keep_top_k: int = 200  # detections kept overall


def meta_arch_from_heads(heads: HeadSet, spec: DefaultBoxSpec, outputs: Sequence[str], thresholds: Thresholds,
                         *, code_type: CodeType = CodeType.CENTER_SIZE,
                         score_converter: ScoreConverter = ScoreConverter.SOFTMAX, background_label_id: int = 0,
                         name: str = "ssd", where: str = "model") -> MetaArch:
    """One caffe_ssd block: the heads in prior order, one prior_box_param per head from the spec, the thresholds.
    RecipeError when the graph's heads do not fit the spec (count, boxes per location, grids)."""
    params = prior_box_params(spec)
    if len(heads.heads) != len(params):
        raise RecipeError(f"{where}: {len(heads.heads)} heads found but the default-box spec has {len(params)} "
                          "layers", hint="check the card's steps/scales/aspect_ratios")
    for head, param, grid in zip(heads.heads, params, spec.feature_sizes()):
        want = priors_per_location(param)
        if head.boxes_per_location != want:
            raise RecipeError(f"{where}: head {head.index} ({head.box_tensor!r}) has {head.boxes_per_location} boxes "
                              f"per location, the spec gives {want}")
        if head.grid is not None and head.grid != grid:
            raise RecipeError(f"{where}: head {head.index} ({head.box_tensor!r}) is a {head.grid[0]}x{head.grid[1]} "
                              f"grid, the spec gives {grid[0]}x{grid[1]}", hint="is the input size right?")
    ssd = CaffeSsd(
        box_input=tuple(heads.box_inputs), class_input=tuple(heads.class_inputs), output=tuple(outputs),
        in_width=spec.input_size[1], in_height=spec.input_size[0], score_converter=score_converter,
        prior_box_param=tuple(params),
        detection_output_param=DetectionOutputParam(
            num_classes=heads.num_classes, share_location=True, background_label_id=background_label_id,
            nms_param=NmsParam(nms_threshold=thresholds.nms_threshold, top_k=thresholds.top_k),
            code_type=code_type, keep_top_k=thresholds.keep_top_k,
            confidence_threshold=thresholds.confidence_threshold),
        data_layout=heads.layout)
    return MetaArch(name=name, caffe_ssd=(ssd,))
