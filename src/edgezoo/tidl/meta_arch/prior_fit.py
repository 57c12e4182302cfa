"""Fit Caffe/TIDL prior_box_param to priors read from a graph, one per head, and measure what stays different.

Per head the graph's priors are [H, W, A, 4] (cx, cy, w, h). The fit reads:
- steps from the centre spacing (image / grid when the centres are (j + offset) / grid, kept exact the way
  tidl.meta_arch.priors does for MLPerf's 1200 / 13), the offset from the first centre;
- min_size from the smallest square box, max_size from the second square (sqrt(min * max) is its side; TIDL casts
  max_size to int, so it is rounded and the difference measured);
- aspect ratios w / h of the other boxes (from the side that is not clamped at 1.0 when one is), flip true when they
  come in reciprocal pairs, else listed one by one with flip false;
- the order: Caffe builds [min square, max square, ratio boxes in list order]; `order[i]` is the graph box that Caffe
  prior i stands for. A head whose boxes are in another order gets its channels permuted (tidl.meta_arch.prior_fold).

What no parameterisation reproduces (clamped sizes, a non-integral max_size) is measured per head (`deviation`);
when the size ratio graph / TIDL is the same at every location it is folded into the box head
(prior_fold.fold_size_ratios), after which TIDL decodes the graph's boxes exactly. A head needing more than one
min_size (boxes of two scales) cannot be one prior_box_param: the ONNX route splits it per scale first
(tidl.meta_arch.head_split); given one anyway, fit_head is an exit-2 error, never a wrong prototxt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import DataLayout
from edgezoo.tidl.meta_arch.priors import _exact_step, caffe_aspect_ratios, tidl_priors
from edgezoo.tidl.meta_arch.prototxt import PriorBoxParam

SQUARE = 1e-3  # pixels: a box this close to square is square
CLAMPED = 1 - 1e-6  # a normalised side this large was clamped to the image


@dataclass(frozen=True)
class HeadFit:
    head: int
    param: PriorBoxParam
    order: tuple[int, ...]  # graph box index for each Caffe prior, in Caffe order
    deviation: float  # max |TIDL prior - graph prior| (normalised) before folding
    centre_deviation: float
    size_ratios: np.ndarray  # [A, 2] graph / TIDL (w, h) per Caffe prior: 1 where they agree
    foldable: bool  # the size ratios are the same at every location

    @property
    def permuted(self) -> bool:
        return list(self.order) != sorted(self.order)


def split_per_head(priors: np.ndarray, grids: Sequence[tuple[int, int]], boxes: Sequence[int],
                   layout: DataLayout) -> list[np.ndarray]:
    """[N, 4] in concat order -> [H, W, A, 4] per head. INTERLEAVED heads flatten box-major (A, H, W), SEPARATED
    location-major (H, W, A)."""
    out, start = [], 0
    for (fh, fw), a in zip(grids, boxes):
        part = priors[start:start + a * fh * fw]
        start += a * fh * fw
        if layout is DataLayout.INTERLEAVED:
            out.append(part.reshape(a, fh, fw, 4).transpose(1, 2, 0, 3))
        else:
            out.append(part.reshape(fh, fw, a, 4))
    if start != len(priors):
        raise RecipeError(f"the heads have {start} priors, the graph's prior constant {len(priors)}")
    return out


def join_heads(per_head: Sequence[np.ndarray], layout: DataLayout) -> np.ndarray:
    """Inverse of split_per_head."""
    if layout is DataLayout.INTERLEAVED:
        return np.concatenate([p.transpose(2, 0, 1, 3).reshape(-1, 4) for p in per_head])
    return np.concatenate([p.reshape(-1, 4) for p in per_head])


def _step(centres: np.ndarray, image: int) -> tuple[float, float]:
    """(step in pixels, offset) reproducing centres (j + offset) * step / image."""
    if len(centres) == 1:
        return float(image), float(centres[0])
    spacing = float(np.median(np.diff(centres)))
    grid = len(centres)
    if abs(spacing - 1 / grid) < 1e-7:  # centres (j + offset) / grid: the step is image / grid, kept exact
        return _exact_step(image, grid), float(round(centres[0] * grid, 6))
    step = round(spacing * image, 4)
    return step, float(round(centres[0] * image / step, 6))


def _nice(r: float) -> float:
    f = Fraction(r).limit_denominator(8)
    return float(f) if abs(float(f) - r) <= 1e-4 * r else round(r, 6)


def fit_head(k: int, hwa: np.ndarray, image: tuple[int, int], variances: Sequence[float]) -> HeadFit:
    """The prior_box_param for one head's graph priors [H, W, A, 4]; RecipeError when one cannot describe them."""
    img_h, img_w = image
    fh, fw, a_count, _ = hwa.shape
    step_w, off_w = _step(hwa[0, :, 0, 0], img_w)
    step_h, off_h = _step(hwa[:, 0, 0, 1], img_h)
    sizes = np.median(hwa[..., 2:].reshape(-1, a_count, 2), axis=0)  # [A, 2] normalised (w, h)
    px = sizes * np.array([img_w, img_h])
    squares = sorted((j for j in range(a_count) if abs(px[j, 0] - px[j, 1]) < SQUARE), key=lambda j: px[j, 0])
    if not squares or len(squares) > 2:
        raise RecipeError(f"head {k}: {len(squares)} square boxes per location; one prior_box_param has a min_size "
                          "square and at most one max_size square",
                          hint="a head with boxes of several scales is split per scale first "
                               "(tidl.meta_arch.head_split.scale_groups)")
    min_j = squares[0]
    min_size = float(round(px[min_j, 0], 4))
    max_size: tuple[float, ...] = ()
    if len(squares) == 2:
        max_size = (float(round(px[squares[1], 0] ** 2 / min_size)),)  # TIDL casts max_size to int
    ratios: list[tuple[int, float]] = []
    for j in range(a_count):
        if j in squares:
            continue
        w, h = sizes[j]
        r_w, r_h = (px[j, 0] / min_size) ** 2, (min_size / px[j, 1]) ** 2
        if abs(r_w - r_h) <= 1e-3 * r_h:
            r = r_w
        elif w >= CLAMPED and h < CLAMPED:
            r = r_h
        elif h >= CLAMPED and w < CLAMPED:
            r = r_w
        else:
            raise RecipeError(f"head {k}: box {j} ({px[j, 0]:.4g} x {px[j, 1]:.4g} px) is not an aspect ratio of "
                              f"the min_size {min_size:.4g} square",
                              hint="a head with boxes of several scales is split per scale "
                                   "first (tidl.meta_arch.head_split.scale_groups)")
        ratios.append((j, _nice(r)))
    values = [r for _, r in ratios]
    flip = bool(values) and all(any(abs(v * u - 1) < 1e-4 for u in values) for v in values) and \
        not any(abs(v - 1) < 1e-6 for v in values)
    listed = tuple(dict.fromkeys(v for v in values if v > 1)) if flip else tuple(values)
    if flip and len(listed) * 2 != len(values):
        flip, listed = False, tuple(values)
    steps = {"step": step_w} if step_h == step_w else {"step_h": step_h, "step_w": step_w}
    param = PriorBoxParam(min_size=(min_size,), max_size=max_size, aspect_ratio=listed, flip=flip, clip=False,
                          variance=tuple(float(v) for v in variances), offset=off_w, **steps)
    caffe = caffe_aspect_ratios(param)
    order = [min_j] + ([squares[1]] if max_size else [])
    for r in caffe[1:]:
        order.append(next(j for j, v in ratios if abs(v - r) < 1e-6 and j not in order))
    if len(order) != a_count:
        raise RecipeError(f"head {k}: the prior_box_param gives {len(order)} priors per location, the head has "
                          f"{a_count}")
    tidl = tidl_priors(param, (fh, fw), image)
    graph = hwa[:, :, order, :]
    diff = np.abs(tidl - graph)
    ratio = graph[..., 2:] / tidl[..., 2:]  # [H, W, A, 2]
    flat = ratio.reshape(-1, a_count, 2)
    return HeadFit(k, param, tuple(order), float(diff.max()), float(diff[..., :2].max()), flat[0].copy(),
                   bool(np.ptp(flat, axis=0).max() <= 1e-6) if len(flat) > 1 else True)


def fit_priors(priors: np.ndarray, grids: Sequence[tuple[int, int]], boxes: Sequence[int], layout: DataLayout,
               image: tuple[int, int], variances: Sequence[float]) -> list[HeadFit]:
    """One HeadFit per head for the graph's priors [N, 4] (concat order)."""
    return [fit_head(k, hwa, image, variances)
            for k, hwa in enumerate(split_per_head(priors, grids, boxes, layout))]
