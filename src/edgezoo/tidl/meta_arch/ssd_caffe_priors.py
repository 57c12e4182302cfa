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

from edgezoo.core.errors import RecipeError
from edgezoo.detection.anchors import Anchors
from edgezoo.detection.pipeline_config import AnyAnchorConfig, MultiscaleAnchorConfig
from edgezoo.tidl.meta_arch.priors import tidl_priors
from edgezoo.tidl.meta_arch.prototxt import PriorBoxParam

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


def _grid_steps(cfg: AnyAnchorConfig, anchors: Anchors, layer: int, image: tuple[int, int]) -> dict[str, float]:
    """Caffe's step(s) and offset for one layer's grid (RecipeError when one Caffe offset cannot express it)."""
    img_h, img_w = image
    fh, fw = anchors.feature_maps[layer]
    if isinstance(cfg, MultiscaleAnchorConfig):
        step_h, step_w, off_y, off_x = anchors.grids[layer]
        if off_y != off_x:
            raise RecipeError(f"anchor level {cfg.min_level + layer}: the grid is centred in one direction only "
                              f"(offsets {off_y:g} / {off_x:g} of a stride; the image {img_h}x{img_w} is a multiple "
                              "of the stride in one side only): Caffe priors have one offset",
                              hint="use an input size that is a multiple of 2^max_level")
    else:
        step_h, step_w, off_y = img_h / fh, img_w / fw, 0.5
    # A square grid takes one `step`; otherwise step_h / step_w (TIDL reads either).
    steps = {"step": step_w} if step_h == step_w and img_h == img_w else {"step_h": step_h, "step_w": step_w}
    return {**steps, "offset": off_y}


def _check_expressible(cfg: AnyAnchorConfig) -> float:
    """The pixel size of scale 1 boxes' base; RecipeError naming the field Caffe priors cannot express."""
    if isinstance(cfg, MultiscaleAnchorConfig):
        return 1.0
    where = "model.ssd.anchor_generator.ssd_anchor_generator"
    if cfg.height_stride or cfg.height_offset:
        raise RecipeError(f"{where}.height_stride: explicit anchor strides/offsets are not supported by the ONNX "
                          "route", hint="export to TFLite, which takes any anchors")
    if cfg.base_anchor_height != cfg.base_anchor_width:
        raise RecipeError(f"{where}.base_anchor_height: {cfg.base_anchor_height:g} != base_anchor_width "
                          f"{cfg.base_anchor_width:g} has no Caffe prior (min_size is a square)",
                          hint="export to TFLite, which takes any anchors")
    if cfg.interpolated_scale_aspect_ratio not in (0.0, 1.0):
        raise RecipeError(f"{where}.interpolated_scale_aspect_ratio: {cfg.interpolated_scale_aspect_ratio:g} has no "
                          "Caffe prior (max_size gives a square)", hint="export to TFLite, which takes any anchors")
    return cfg.base_anchor_height


def prior_groups(cfg: AnyAnchorConfig, anchors: Anchors, image: tuple[int, int],
                 variances: tuple[float, float, float, float]) -> list[PriorGroup]:
    """The Caffe heads reproducing `anchors` (see the module docstring); RecipeError for what cannot be expressed.

    Per layer, boxes of one size form a head (a layer with several sizes is split: 0a, 0b, ...); its ratio-1 box
    comes first (a dummy when the layer has none at that size), the interpolated box second as max_size when
    sqrt(min * max) reproduces it with an integral max_size (TIDL casts it to int), else it gets a head of its own.
    """
    base = min(image) * _check_expressible(cfg)
    groups: list[PriorGroup] = []
    for layer, (spec, grid) in enumerate(zip(anchors.layers, anchors.feature_maps)):
        boxes = list(spec.boxes)
        interp = spec.interpolated
        by_scale: dict[float, list[int]] = {}
        for t, (s, _) in enumerate(boxes):
            if t != interp:
                by_scale.setdefault(s, []).append(t)
        own_head = False
        if interp is not None:
            q = boxes[interp][0]
            first = next(iter(by_scale), None)
            max_size = _int_if_close(q * q / first * base) if first is not None else 0.5
            own_head = first is None or max_size != round(max_size)
        heads: list[tuple[float, list[int], tuple[float, ...]]] = []
        for k, (s, members) in enumerate(by_scale.items()):
            with_max = interp is not None and not own_head and k == 0
            heads.append((s, members, (_int_if_close(boxes[interp][0] ** 2 / s * base),) if with_max else ()))
        if own_head:
            heads.append((boxes[interp][0], [interp], ()))
        steps = _grid_steps(cfg, anchors, layer, image)
        for g, (s, members, max_size) in enumerate(heads):
            ratios = [boxes[t][1] for t in members]
            one = [t for t in members if boxes[t][1] == 1.0]
            rest = [t for t in members if boxes[t][1] != 1.0]
            if len(one) > 1 or len(set(ratios)) != len(ratios):
                raise RecipeError(f"anchor layer {layer}: repeated aspect ratios at scale {s} cannot be Caffe priors")
            order: list[int | None] = [one[0] if one else None]
            if max_size:
                order.append(interp)
            order += rest
            param = PriorBoxParam(min_size=(s * base,), max_size=max_size,
                                  aspect_ratio=tuple(float(boxes[t][1]) for t in rest), flip=False, clip=False,
                                  variance=tuple(variances), **steps)
            groups.append(PriorGroup(layer, "abcdefgh"[g] if len(heads) > 1 else "", param, tuple(order), grid))
    return groups


def group_priors(groups: list[PriorGroup], image: tuple[int, int]) -> list[np.ndarray]:
    """TIDL's priors per group, [H, W, A, 4] (cx, cy, w, h)."""
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
                       w_cls: np.ndarray, b_cls: np.ndarray, classes: int,
                       softmax: bool = False) -> list[tuple[np.ndarray, ...]]:
    """Per group of `layer`: (box W, box B, class W, class B) with channels in Caffe prior order (SEPARATED layout).

    Weights are ONNX Conv [O, I, kh, kw]; dummy priors get zero weights, zero box bias and class bias DUMMY_LOGIT
    (SOFTMAX scores: background -DUMMY_LOGIT, so the classes share e^-40 instead of 1 / classes each).
    """
    dummy_bias = np.full(classes, DUMMY_LOGIT, b_cls.dtype)
    if softmax:
        dummy_bias[0] = -DUMMY_LOGIT
    out = []
    for g in (g for g in groups if g.layer == layer):
        parts = ([], [], [], [])
        for t in g.tf_boxes:
            if t is None:
                parts[0].append(np.zeros_like(w_box[:4]))
                parts[1].append(np.zeros(4, b_box.dtype))
                parts[2].append(np.zeros_like(w_cls[:classes]))
                parts[3].append(dummy_bias.copy())
            else:
                parts[0].append(w_box[t * 4:(t + 1) * 4])
                parts[1].append(b_box[t * 4:(t + 1) * 4])
                parts[2].append(w_cls[t * classes:(t + 1) * classes])
                parts[3].append(b_cls[t * classes:(t + 1) * classes])
        out.append(tuple(np.concatenate(p).astype(np.float32) for p in parts))
    return out


def interp_int_cast_error(groups: list[PriorGroup], cfg: AnyAnchorConfig, image: tuple[int, int]) -> float:
    """Relative size error TIDL's int(max_size) introduces on the interpolated boxes (0 when max sizes are integral)."""
    worst = 0.0
    for g in groups:
        if g.param.max_size:
            exact = math.sqrt(g.param.min_size[0] * g.param.max_size[0])
            tidl = math.sqrt(g.param.min_size[0] * int(g.param.max_size[0]))
            worst = max(worst, abs(tidl - exact) / exact)
    return worst
