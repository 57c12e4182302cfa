"""TF OD API anchors as Caffe/TIDL PriorBox parameters: which heads and channel orders make them equal.

Findings (ssd_mobilenet_v1, 300x300; checked numerically by `compare_with_anchors`):
- layers 1..5 (ratios 1, 2, 0.5, 3, 0.3333 at s_i, then the interpolated sqrt(s_i s_i+1) box LAST): one
  prior_box_param {min_size s_i*300, max_size s_i+1*300, aspect_ratio 2, 0.5, 3, 0.3333, flip false} gives the same
  six boxes in the order [1, interpolated, 2, 0.5, 3, 0.3333]: the head's channels are permuted to that order.
  Listing the ratios with flip false keeps 0.3333 (flip would make 1/3); TIDL casts max_size to int, exact here
  because s_i+1*300 is an integer (105, 150, 195, 240, 285, 300);
- layer 0 (three boxes of TWO scales: (0.1, 1), (0.2, 2), (0.2, 0.5)): a prior_box_param has one min_size and
  always a ratio-1 box, so the head is split in two: {min_size 30} (one box) and {min_size 60, aspect_ratio 2, 0.5,
  flip false}, whose implicit ratio-1 prior has no TF counterpart: its channels get zero weights and class bias
  DUMMY_LOGIT (score sigmoid(-20) = 2e-9, below any threshold >= 1e-8), so it never produces a detection;
- grids: step = 300 / f (15.789... for the 19x19 map), offset 0.5, clip false (TF does not clip).
With this the real priors equal the TF anchors to float32 rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgezoo.detection.anchors import Anchors
from edgezoo.detection.pipeline_config import AnchorGeneratorConfig
from edgezoo.detection.prototxt import PriorBoxParam
from edgezoo.errors import RecipeError

DUMMY_LOGIT = -20.0


@dataclass(frozen=True)
class PriorGroup:
    """One Caffe head: its prior_box_param and, per Caffe prior, the TF box index (None for a dummy prior)."""

    layer: int
    suffix: str  # "" for a whole layer, "a"/"b" when a layer is split
    param: PriorBoxParam
    tf_boxes: tuple[int | None, ...]
    grid: tuple[int, int]


def _int_if_close(x: float) -> float:
    r = round(x)
    return float(r) if abs(x - r) < 1e-3 else x


def prior_groups(cfg: AnchorGeneratorConfig, anchors: Anchors, image: tuple[int, int],
                 variances: tuple[float, float, float, float]) -> list[PriorGroup]:
    """The Caffe heads reproducing `anchors` (see the module docstring); RecipeError for what cannot be expressed."""
    if cfg.height_stride or cfg.height_offset:
        raise RecipeError("the ONNX route supports the default anchor grid only (no anchor strides/offsets in "
                          "pipeline.config)")
    img_h, img_w = image
    base = min(img_h, img_w)
    from edgezoo.detection.anchors import layer_scales

    scales = layer_scales(cfg)
    groups: list[PriorGroup] = []
    for layer, (spec, grid) in enumerate(zip(anchors.layers, anchors.feature_maps)):
        boxes = list(spec.boxes)
        interp = None
        if not (layer == 0 and cfg.reduce_boxes_in_lowest_layer) and cfg.interpolated_scale_aspect_ratio > 0:
            interp = len(boxes) - 1
            if cfg.interpolated_scale_aspect_ratio != 1.0:
                raise RecipeError("interpolated_scale_aspect_ratio != 1 has no Caffe prior (max_size gives a square)")
        by_scale: dict[float, list[int]] = {}
        for t, (s, _) in enumerate(boxes):
            if t != interp:
                by_scale.setdefault(s, []).append(t)
        split = len(by_scale) > 1
        for g, (s, members) in enumerate(by_scale.items()):
            ratios = [boxes[t][1] for t in members]
            one = [t for t in members if boxes[t][1] == 1.0]
            rest = [t for t in members if boxes[t][1] != 1.0]
            order: list[int | None] = [one[0] if one else None]
            max_size: tuple[float, ...] = ()
            if interp is not None and s == scales[layer]:
                max_size = (_int_if_close(scales[layer + 1] * base),)
                order.append(interp)
            order += rest
            if len(one) > 1 or len(set(ratios)) != len(ratios):
                raise RecipeError(f"anchor layer {layer}: repeated aspect ratios at scale {s} cannot be Caffe priors")
            # A square image takes one `step`; otherwise step_h / step_w (TIDL reads either).
            steps = {"step": img_w / grid[1]} if img_h == img_w else {"step_h": img_h / grid[0],
                                                                      "step_w": img_w / grid[1]}
            param = PriorBoxParam(min_size=(s * base,), max_size=max_size,
                                  aspect_ratio=tuple(float(boxes[t][1]) for t in rest), flip=False, clip=False,
                                  variance=tuple(variances), offset=0.5, **steps)
            groups.append(PriorGroup(layer, "abcdefgh"[g] if split else "", param, tuple(order), grid))
    return groups


def group_priors(groups: list[PriorGroup], image: tuple[int, int]) -> list[np.ndarray]:
    """TIDL's priors per group, [H, W, A, 4] (cx, cy, w, h)."""
    from edgezoo.detection.priors import tidl_priors

    return [tidl_priors(g.param, g.grid, image) for g in groups]


@dataclass(frozen=True)
class PriorComparison:
    max_abs_diff: float  # over the real priors, vs the TF anchors (same box)
    real_priors: int
    dummy_priors: int
    worst: str


def compare_with_anchors(groups: list[PriorGroup], anchors: Anchors, image: tuple[int, int]) -> PriorComparison:
    """How far TIDL's priors are from the TF anchors they stand for (normalised units)."""
    tf_center = anchors.center.astype(np.float64)  # (yc, xc, h, w)
    starts, start = [], 0
    for spec, (fh, fw) in zip(anchors.layers, anchors.feature_maps):
        starts.append(start)
        start += fh * fw * spec.count
    worst, where, real, dummy = 0.0, "", 0, 0
    for g, pri in zip(groups, group_priors(groups, image)):
        fh, fw = g.grid
        count = anchors.layers[g.layer].count
        for a, t in enumerate(g.tf_boxes):
            if t is None:
                dummy += fh * fw
                continue
            idx = starts[g.layer] + (np.arange(fh)[:, None] * fw + np.arange(fw)[None, :]) * count + t
            want = tf_center[idx.reshape(-1)][:, [1, 0, 3, 2]]  # -> (xc, yc, w, h)
            got = pri[:, :, a, :].reshape(-1, 4)
            diff = float(np.abs(got - want).max())
            real += fh * fw
            if diff > worst:
                worst, where = diff, f"layer {g.layer}{g.suffix} prior {a} (TF box {t})"
    return PriorComparison(worst, real, dummy, where)


def caffe_head_weights(groups: list[PriorGroup], layer: int, w_box: np.ndarray, b_box: np.ndarray,
                       w_cls: np.ndarray, b_cls: np.ndarray, classes: int) -> list[tuple[np.ndarray, ...]]:
    """Per group of `layer`: (box W, box B, class W, class B) with channels in Caffe prior order (SEPARATED layout).

    Weights are ONNX Conv [O, I, kh, kw]; dummy priors get zero weights, zero box bias and class bias DUMMY_LOGIT.
    """
    out = []
    for g in (g for g in groups if g.layer == layer):
        parts = ([], [], [], [])
        for t in g.tf_boxes:
            if t is None:
                parts[0].append(np.zeros_like(w_box[:4]))
                parts[1].append(np.zeros(4, b_box.dtype))
                parts[2].append(np.zeros_like(w_cls[:classes]))
                parts[3].append(np.full(classes, DUMMY_LOGIT, b_cls.dtype))
            else:
                parts[0].append(w_box[t * 4:(t + 1) * 4])
                parts[1].append(b_box[t * 4:(t + 1) * 4])
                parts[2].append(w_cls[t * classes:(t + 1) * classes])
                parts[3].append(b_cls[t * classes:(t + 1) * classes])
        out.append(tuple(np.concatenate(p).astype(np.float32) for p in parts))
    return out


def interp_int_cast_error(groups: list[PriorGroup], cfg: AnchorGeneratorConfig, image: tuple[int, int]) -> float:
    """Relative size error TIDL's int(max_size) introduces on the interpolated boxes (0 when max sizes are integral)."""
    worst = 0.0
    for g in groups:
        if g.param.max_size:
            exact = math.sqrt(g.param.min_size[0] * g.param.max_size[0])
            tidl = math.sqrt(g.param.min_size[0] * int(g.param.max_size[0]))
            worst = max(worst, abs(tidl - exact) / exact)
    return worst
