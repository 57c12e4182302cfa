"""SSD priors two ways: the MLPerf DefaultBoxes a model was trained with, and the Caffe/TIDL PriorBox priors a
meta-architecture prototxt makes TIDL build -- plus the derivation of one `prior_box_param` per head and the
measured difference between the two.

MLPerf (ResNet34-SSD): per layer k, sizes s_k = scales[k] / image and s'_k = sqrt(s_k * scales[k+1] / image);
boxes (s_k, s_k), (s'_k, s'_k), then for each aspect ratio r: (s_k*sqrt(r), s_k/sqrt(r)) and its transpose. Centres
at (j + 0.5) / f_k with f_k = image // step (not image / step: 1200 // 92 = 13 while 1200 / 92 = 13.04). Stored as
(cx, cy, w, h), flattened box-major (layer, box, row, column), and CLAMPED to [0, 1] coordinate-wise.

Caffe/TIDL PriorBox (tidl.md): aspect list [1.0] + each listed r (duplicates skipped) + 1/r when flip; per location
the min_size box, then sqrt(min_size * int(max_size)), then min_size*sqrt(r) x min_size/sqrt(r) for r != 1; centres
at (j + offset) * step / image; no clipping unless clip (which clips corners, not sizes). Arrays here are
[H, W, A, 4] (cx, cy, w, h) normalised: location-major, anchors in Caffe order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgezoo.core.errors import ConfigError
from edgezoo.tidl.meta_arch.prototxt import PriorBoxParam

COORDS = ("cx", "cy", "w", "h")


@dataclass(frozen=True)
class DefaultBoxSpec:
    """The card's default-box spec (recipe params): image size, steps, scales (layers + 1), aspect ratios."""

    input_size: tuple[int, int]  # (height, width) in pixels
    steps: tuple[float, ...]
    scales: tuple[float, ...]
    aspect_ratios: tuple[tuple[float, ...], ...]
    variances: tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], where: str = "recipe params") -> "DefaultBoxSpec":
        """Read input_size, steps, scales, aspect_ratios, variances; ConfigError naming the field on bad values."""
        def need(key: str) -> Any:
            if key not in params:
                raise ConfigError(f"{where}: missing {key!r}", hint="the card's recipe params define the default boxes")
            return params[key]

        try:
            size = need("input_size")
            input_size = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))
            steps = tuple(float(s) for s in need("steps"))
            scales = tuple(float(s) for s in need("scales"))
            ratios = tuple(tuple(float(r) for r in layer) for layer in need("aspect_ratios"))
            variances = tuple(float(v) for v in params.get("variances", cls.variances))
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"{where}: malformed default-box spec ({exc})",
                              hint="input_size [h, w], steps [..], scales [..], aspect_ratios [[..], ..]") from None
        spec = cls(input_size, steps, scales, ratios, variances)
        spec.check(where)
        return spec

    def check(self, where: str = "default-box spec") -> None:
        n = len(self.steps)
        problems = []
        if n == 0:
            problems.append("steps: at least one layer is needed")
        if len(self.scales) != n + 1:
            problems.append(f"scales: expected {n + 1} values (layers + 1), got {len(self.scales)}")
        if len(self.aspect_ratios) != n:
            problems.append(f"aspect_ratios: expected {n} lists (one per layer), got {len(self.aspect_ratios)}")
        if len(self.variances) != 4:
            problems.append(f"variances: expected 4 values, got {len(self.variances)}")
        if any(s <= 0 for s in self.steps) or any(s <= 0 for s in self.scales):
            problems.append("steps and scales must be positive")
        if any(r <= 0 for layer in self.aspect_ratios for r in layer):
            problems.append("aspect ratios must be positive")
        if problems:
            raise ConfigError(f"{where}: " + "; ".join(problems))

    @property
    def num_layers(self) -> int:
        return len(self.steps)

    def feature_sizes(self) -> list[tuple[int, int]]:
        """(rows, columns) per layer: image // step, as MLPerf computes f_k."""
        h, w = self.input_size
        return [(int(h // s), int(w // s)) for s in self.steps]

    def boxes_per_location(self) -> list[int]:
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def num_priors(self) -> int:
        return sum(a * fh * fw for a, (fh, fw) in zip(self.boxes_per_location(), self.feature_sizes()))


def mlperf_default_boxes(spec: DefaultBoxSpec, clamp: bool = True) -> np.ndarray:
    """MLPerf DefaultBoxes [N, 4] (cx, cy, w, h), box-major per layer, clamped to [0, 1] unless clamp=False."""
    img_h, img_w = spec.input_size
    out = []
    for k, (fh, fw) in enumerate(spec.feature_sizes()):
        sk1 = spec.scales[k] / img_w
        sk2 = spec.scales[k + 1] / img_h
        sk3 = math.sqrt(sk1 * sk2)
        sizes = [(sk1, sk1), (sk3, sk3)]
        for r in spec.aspect_ratios[k]:
            w, h = sk1 * math.sqrt(r), sk1 / math.sqrt(r)
            sizes += [(w, h), (h, w)]
        cy, cx = np.meshgrid((np.arange(fh) + 0.5) / fh, (np.arange(fw) + 0.5) / fw, indexing="ij")
        for w, h in sizes:
            out.append(np.stack([cx.ravel(), cy.ravel(), np.full(fh * fw, w), np.full(fh * fw, h)], axis=1))
    boxes = np.concatenate(out).astype(np.float64)
    return np.clip(boxes, 0.0, 1.0) if clamp else boxes


def _exact_step(image: int, grid: int) -> float:
    """A step whose centres (j + 0.5) * step / image equal MLPerf's (j + 0.5) / grid to ~1e-6 and whose
    image / step still floors to `grid` in float32 (1200 / 92.30769 would give 12.99999 and lose a column)."""
    if image % grid == 0:
        return float(image // grid)
    step = math.floor(image / grid * 1e4) / 1e4  # rounded DOWN so image / step stays >= grid
    assert int(np.float32(image) / np.float32(step)) == grid
    return step


def prior_box_params(spec: DefaultBoxSpec) -> list[PriorBoxParam]:
    """One prior_box_param per head reproducing MLPerf's boxes as closely as Caffe semantics allow.

    Steps are image / f_k (not the nominal step), so the centres match; what cannot match is MLPerf's clamping of
    sizes above 1.0 (see compare_priors)."""
    img_h, img_w = spec.input_size
    params = []
    for k, (fh, fw) in enumerate(spec.feature_sizes()):
        sh, sw = _exact_step(img_h, fh), _exact_step(img_w, fw)
        step_fields: dict[str, float] = {"step": sw} if sh == sw else {"step_h": sh, "step_w": sw}
        params.append(PriorBoxParam(
            min_size=(spec.scales[k],), max_size=(spec.scales[k + 1],), aspect_ratio=spec.aspect_ratios[k],
            flip=True, clip=False, variance=tuple(spec.variances), **step_fields))
    return params


def caffe_aspect_ratios(param: PriorBoxParam) -> list[float]:
    """[1.0] + each listed ratio (duplicates skipped) + its inverse when flip -- Caffe's order."""
    ratios = [1.0]
    for r in param.aspect_ratio:
        if any(abs(r - a) < 1e-6 for a in ratios):
            continue
        ratios.append(r)
        if param.effective_flip:
            ratios.append(1.0 / r)
    return ratios


def priors_per_location(param: PriorBoxParam) -> int:
    extra = len(caffe_aspect_ratios(param)) - 1
    return len(param.min_size) * (1 + (1 if param.max_size else 0) + extra)


def _box_sizes(param: PriorBoxParam) -> list[tuple[float, float]]:
    """(width, height) in pixels per anchor, Caffe order."""
    sizes = []
    ratios = caffe_aspect_ratios(param)
    for i, min_size in enumerate(param.min_size):
        sizes.append((min_size, min_size))
        if param.max_size:
            s = math.sqrt(min_size * int(param.max_size[i]))  # TIDL casts max_size to int
            sizes.append((s, s))
        sizes += [(min_size * math.sqrt(r), min_size / math.sqrt(r)) for r in ratios[1:]]
    return sizes


def tidl_priors(param: PriorBoxParam, grid: tuple[int, int], image: tuple[int, int]) -> np.ndarray:
    """Priors TIDL builds for one head: [H, W, A, 4] (cx, cy, w, h) normalised by `image` (height, width)."""
    fh, fw = grid
    img_h, img_w = image
    step_h, step_w = param.effective_steps()
    if step_h is None or step_w is None:
        raise ConfigError("prior_box_param: no step (TIDL needs step or step_h/step_w)")
    off = param.effective_offset
    cy, cx = np.meshgrid((np.arange(fh) + off) * step_h / img_h, (np.arange(fw) + off) * step_w / img_w,
                         indexing="ij")
    sizes = np.array(_box_sizes(param), dtype=np.float64)  # [A, 2] (w, h) pixels
    out = np.empty((fh, fw, len(sizes), 4), dtype=np.float64)
    out[..., 0] = cx[..., None]
    out[..., 1] = cy[..., None]
    out[..., 2] = sizes[:, 0] / img_w
    out[..., 3] = sizes[:, 1] / img_h
    if param.effective_clip:  # Caffe clips the corners, which also shrinks the size
        x0 = np.clip(out[..., 0] - out[..., 2] / 2, 0, 1)
        x1 = np.clip(out[..., 0] + out[..., 2] / 2, 0, 1)
        y0 = np.clip(out[..., 1] - out[..., 3] / 2, 0, 1)
        y1 = np.clip(out[..., 1] + out[..., 3] / 2, 0, 1)
        out[..., 0], out[..., 1], out[..., 2], out[..., 3] = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    return out


def flatten_anchor_major(per_head: Sequence[np.ndarray]) -> np.ndarray:
    """[H, W, A, 4] per head -> [N, 4] in (head, anchor, row, column) order: how MLPerf's heads flatten."""
    return np.concatenate([p.transpose(2, 0, 1, 3).reshape(-1, 4) for p in per_head])


@dataclass
class PriorComparison:
    """Largest differences between MLPerf default boxes and the priors TIDL builds from the prototxt."""

    max_abs_diff: float  # over all priors and (cx, cy, w, h), against the clamped MLPerf boxes
    where: str  # e.g. "head 5, anchor 2, row 0, column 0, w"
    max_abs_diff_unclamped: float  # against MLPerf boxes before clamping (isolates everything but the clamp)
    differing_priors: int  # priors with any coordinate differing by more than 1e-5
    num_priors: int
    per_head: list[float] = field(default_factory=list)  # max abs diff per head (clamped)
    causes: list[str] = field(default_factory=list)


def compare_priors(spec: DefaultBoxSpec, params: Sequence[PriorBoxParam]) -> PriorComparison:
    """Build both prior sets on the spec's grids and report where they differ and why."""
    grids = spec.feature_sizes()
    if len(params) != len(grids):
        raise ConfigError(f"prior_box_param: {len(params)} given for {len(grids)} heads")
    per_head = [tidl_priors(p, g, spec.input_size) for p, g in zip(params, grids)]
    for k, (p, a) in enumerate(zip(per_head, spec.boxes_per_location())):
        if p.shape[2] != a:
            raise ConfigError(f"prior_box_param[{k}]: gives {p.shape[2]} priors per location, the spec has {a}")
    tidl = flatten_anchor_major(per_head)
    clamped, raw = mlperf_default_boxes(spec, True), mlperf_default_boxes(spec, False)
    diff = np.abs(tidl - clamped)
    flat = int(np.argmax(diff))
    index, coord = divmod(flat, 4)
    counts = [a * fh * fw for a, (fh, fw) in zip(spec.boxes_per_location(), grids)]
    head = int(np.searchsorted(np.cumsum(counts), index, side="right"))
    local = index - sum(counts[:head])
    fh, fw = grids[head]
    anchor, rest = divmod(local, fh * fw)
    row, col = divmod(rest, fw)
    per_head_max = [float(d.max()) for d in np.split(diff, np.cumsum(counts)[:-1])]
    causes = []
    clamp_count = int(np.any(raw != clamped, axis=1).sum())
    if clamp_count:
        causes.append(f"MLPerf clamps {clamp_count} default boxes to [0, 1]; Caffe priors with clip=false are not "
                      "clamped (and clip=true clips corners, which also moves centres)")
    if any(not float(m).is_integer() for p in params for m in p.max_size):
        causes.append("a max_size is not an integer: TIDL casts it to int")
    unclamped = float(np.abs(tidl - raw).max())
    if unclamped > 1e-5:
        causes.append(f"centres or sizes differ by {unclamped:.3g} besides clamping (steps or sizes do not match)")
    return PriorComparison(
        max_abs_diff=float(diff.max()),
        where=f"head {head}, anchor {anchor}, row {row}, column {col}, {COORDS[coord]}",
        max_abs_diff_unclamped=unclamped,
        differing_priors=int(np.any(diff > 1e-5, axis=1).sum()),
        num_priors=len(tidl), per_head=per_head_max, causes=causes)
