"""Measure an ONNX SSD's in-graph decoding: run its tail alone (ssd.onnx_ssd_probe) on regressions we choose and
read the priors, the box coding, the variances, the corner order and the units from what it does:
- regressions 0 give the priors themselves (the decoded corners);
- moving one regression column at a time shows which box axis it moves and how: a centre column shifts both corners
  of one axis by v * delta * prior size (v: its variance), a size column scales the box along one axis by
  exp(v * delta). That fixes the regression order ((dx, dy, dw, dh) or (dy, dx, dh, dw)), the variances and which
  output columns pair into an axis;
- which axis is x is read from the priors' grid, not from a fit: along a head's columns the x centres change
  (priors are ordered row, column, box); a fit of the decoded boxes cannot tell a graph from its transpose;
- a random regression then checks the whole centre-size model (worst error reported, FIT_TOLERANCE or refused).
The decoded tensor used is the first one downstream of the box concat that holds N x 4 values with that corner
pattern (before any clipping to the image, which the report states).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import CodeType, DataLayout
from edgezoo.graphs import onnx_model
from edgezoo.ssd.onnx_heads import HeadSet
from edgezoo.ssd.onnx_ssd_probe import TailProbe, decode_rows

FIT_TOLERANCE = 1e-4  # normalised box units: a decoding the measured model describes is exact to float32 (~1e-6)
DELTA = 0.25  # regression step of the measurement
_STOP = {"NonMaxSuppression", "If", "Loop", "Scan", "NonZero", "TopK", "GatherND"}


def _as_rows(value: np.ndarray, n: int) -> np.ndarray | None:
    """A tensor holding N x 4 values as [N, 4] (dims N and 4 once 1s are dropped, either order)."""
    dims = [d for d in value.shape if d != 1]
    if dims == [n, 4]:
        return value.reshape(n, 4).astype(np.float64)
    if dims == [4, n] and n != 4:
        return value.reshape(4, n).T.astype(np.float64)
    return None


def _candidates(model: Any, box_concat: str, n: int) -> list[str]:
    """Float tensors downstream of the box concat (main graph, before any selection) that may hold N x 4 values
    (a static shape that does not, rules a tensor out; exporters often leave these shapes unknown)."""

    infos = onnx_model.value_infos(model)
    users: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    found, queue, seen = [], [box_concat], set()
    while queue and len(seen) < 400:
        for node in users.get(queue.pop(0), []):
            if id(node) in seen or node.op_type in _STOP:
                continue
            seen.add(id(node))
            for out in node.output:
                vi = infos.get(out)
                if vi is None or vi.type.tensor_type.elem_type not in (1, 11):
                    continue
                shape = onnx_model.info(vi).shape
                known = bool(shape) and all(isinstance(d, int) and d > 0 for d in shape)
                if not known or sorted(d for d in shape if d != 1) == sorted([n, 4]):
                    found.append(out)
                queue.append(out)
    return found


@dataclass(frozen=True)
class _Axis:
    cols: tuple[int, int]  # (low corner, high corner) output columns
    centre_loc: int  # regression column moving the centre
    size_loc: int  # regression column scaling the size
    centre_variance: float
    size_variance: float


def _axes(runs: Sequence[np.ndarray], base: np.ndarray) -> tuple[_Axis, _Axis] | None:
    """The corner pattern of a decoded [N, 4] tensor measured at regressions 0 (base) and one column moved by DELTA
    (runs[j]); None when the tensor is not corners of a centre-size decoding."""
    scale = float(np.abs(base).max()) + 1.0
    deps = [frozenset(j for j, r in enumerate(runs) if np.abs(r[:, c] - base[:, c]).max() > 1e-6 * scale)
            for c in range(4)]
    if any(len(d) != 2 for d in deps):
        return None
    groups = sorted({d for d in deps}, key=lambda d: min(c for c in range(4) if deps[c] == d))
    if len(groups) != 2 or groups[0] & groups[1]:
        return None
    axes = []
    for group in groups:
        cols = tuple(c for c in range(4) if deps[c] == group)
        lo, hi = cols  # type: ignore[misc]
        size0 = base[:, hi] - base[:, lo]
        if np.any(size0 <= 0):
            return None
        centre0 = (base[:, hi] + base[:, lo]) / 2
        roles = {}
        for j in group:
            size = runs[j][:, hi] - runs[j][:, lo]
            shift = (runs[j][:, hi] + runs[j][:, lo]) / 2 - centre0
            ratio = size / size0
            if np.abs(ratio - 1).max() < 1e-4 and np.abs(shift).max() > 0:
                v = shift / (DELTA * size0)
                roles["centre"] = (j, float(np.median(v)), float(np.abs(v - np.median(v)).max()))
            elif np.abs(shift).max() < 1e-4 * float(size0.max()) and np.all(ratio > 0):
                v = np.log(ratio) / DELTA
                roles["size"] = (j, float(np.median(v)), float(np.abs(v - np.median(v)).max()))
        if set(roles) != {"centre", "size"}:
            return None
        if max(roles["centre"][2], roles["size"][2]) > 1e-3 * max(abs(roles["centre"][1]), abs(roles["size"][1])):
            return None  # the variance changes with the prior: not a centre-size coding
        axes.append(_Axis((lo, hi), roles["centre"][0], roles["size"][0], rounded(roles["centre"][1]),
                          rounded(roles["size"][1])))
    return axes[0], axes[1]


def rounded(v: float) -> float:
    return float(f"{v:.6g}")


def _per_head(rows: np.ndarray, heads: HeadSet) -> list[np.ndarray]:
    """[N, K] in concat order -> [H, W, A, K] per head (INTERLEAVED heads flatten box-major: A, H, W; SEPARATED
    location-major: H, W, A)."""
    out, start = [], 0
    for h in heads.heads:
        (fh, fw), a = h.grid, h.boxes_per_location  # type: ignore[misc]
        part = rows[start:start + a * fh * fw]
        start += a * fh * fw
        if heads.layout is DataLayout.INTERLEAVED:
            out.append(part.reshape(a, fh, fw, -1).transpose(1, 2, 0, 3))
        else:
            out.append(part.reshape(fh, fw, a, -1))
    return out


def _x_first(centres: np.ndarray, heads: HeadSet) -> bool | None:
    """Whether the first measured axis is x: along a head's columns the x centres change (priors are ordered row,
    column, box in every SSD layout). None when no head has more than one row or column."""

    along = np.zeros((2, 2))  # [axis, (across columns, across rows)]
    for part in _per_head(centres, heads):
        for axis in range(2):
            values = part[..., axis]
            along[axis, 0] += float(np.abs(np.diff(values, axis=1)).sum()) if part.shape[1] > 1 else 0.0
            along[axis, 1] += float(np.abs(np.diff(values, axis=0)).sum()) if part.shape[0] > 1 else 0.0
    first, second = along[0, 0] + along[1, 1], along[0, 1] + along[1, 0]
    if first == second:
        return None
    return bool(first > second)


@dataclass
class Measured:
    priors: np.ndarray  # normalised (cx, cy, w, h)
    priors_graph: np.ndarray  # in the decoding's units
    variances: tuple[float, float, float, float]
    code_type: CodeType
    box_order: str
    units: tuple[float, float]
    error: float
    tensor: str
    notes: list[str]
    loc_columns: tuple[int, int, int, int]  # regression column of (x centre, y centre, w, h)


def measure(model: Any, heads: HeadSet, image: tuple[int, int], where: str) -> Measured:
    """Priors and coding of the decoding, measured (see the module docstring). `image`: (height, width)."""

    n = heads.num_priors
    assert n is not None
    names = _candidates(model, heads.box_concat, n)
    if not names:
        raise RecipeError(f"{where}: no decoded boxes ({n} x 4 values) after the box heads",
                          hint="the decoding must produce one box per prior before selecting them")
    probe = TailProbe(model, heads.box_concat, heads.class_concat, n, heads.num_classes,
                      heads.layout is DataLayout.INTERLEAVED, outputs=names, ranks=heads.ranks)
    zero_logits = np.zeros((n, heads.num_classes))
    base_all = probe.run(np.zeros((n, 4)), zero_logits)
    moved_all = []
    for j in range(4):
        loc = np.zeros((n, 4))
        loc[:, j] = DELTA
        moved_all.append(probe.run(loc, zero_logits))
    chosen = None
    for name in names:
        base = _as_rows(base_all[name], n)
        if base is None:
            continue
        axes = _axes([_as_rows(m[name], n) for m in moved_all], base)  # type: ignore[misc]
        if axes is not None:
            chosen = (name, base, axes)
            break
    if chosen is None:
        raise RecipeError(f"{where}: the boxes after the box heads are not a centre-size decoding (no tensor of "
                          f"{n} x 4 corners whose centres move by v x regression x prior size and sizes by "
                          "exp(v x regression))", hint="supported: the SSD centre-size box coding, any order")
    name, base, (a0, a1) = chosen
    notes: list[str] = []
    if a0.cols != (0, 2) or a1.cols != (1, 3):
        raise RecipeError(f"{where}: the decoded boxes ({name}) hold their corners in column order "
                          f"{a0.cols + a1.cols}", hint="supported: (x1, y1, x2, y2) and (y1, x1, y2, x2)")
    centres = np.stack([(base[:, 0] + base[:, 2]) / 2, (base[:, 1] + base[:, 3]) / 2], axis=1)
    sizes = np.stack([base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]], axis=1)
    x_first = _x_first(centres, heads)
    if x_first is None:
        x_first = True
        notes.append("every head is 1x1: the decoded boxes are taken as (x1, y1, x2, y2)")
    ax, ay = (a0, a1) if x_first else (a1, a0)
    cx, cy = centres[:, 0 if x_first else 1], centres[:, 1 if x_first else 0]
    w, h = sizes[:, 0 if x_first else 1], sizes[:, 1 if x_first else 0]
    priors_graph = np.stack([cx, cy, w, h], axis=1)
    extent = float(max(np.abs(cx).max(), np.abs(cy).max(), w.max(), h.max()))
    units = (float(image[1]), float(image[0])) if extent > 2.0 else (1.0, 1.0)
    if units != (1.0, 1.0):
        notes.append(f"the decoding works in pixels of the {image[1]}x{image[0]} input: priors normalised by it")
    priors = priors_graph / np.array([units[0], units[1], units[0], units[1]])
    loc_columns = (ax.centre_loc, ay.centre_loc, ax.size_loc, ay.size_loc)
    if loc_columns == (0, 1, 2, 3):
        code = CodeType.CENTER_SIZE
    elif loc_columns == (1, 0, 3, 2):
        code = CodeType.CENTER_SIZE_YXHW
    else:
        raise RecipeError(f"{where}: the box regressions are in column order (x, y, w, h) = {loc_columns}",
                          hint="TIDL decodes (dx, dy, dw, dh) or (dy, dx, dh, dw)")
    variances = (ax.centre_variance, ay.centre_variance, ax.size_variance, ay.size_variance)
    # The whole model, checked on random regressions: the measured decoding must rebuild the graph's boxes.
    rng = np.random.default_rng(0)
    loc = rng.normal(0, 1, (n, 4))
    actual = _as_rows(probe.run(loc, zero_logits, [name])[name], n)
    rebuilt = decode_rows(loc, priors_graph, variances, loc_columns, "xyxy" if x_first else "yxyx")
    scale = np.array([units[0], units[1], units[0], units[1]] if x_first else [units[1], units[0]] * 2)
    error = float((np.abs(rebuilt - actual) / scale).max())  # type: ignore[operator]
    if not error <= FIT_TOLERANCE:
        raise RecipeError(f"{where}: the boxes after the box heads ({name}) are not a centre-size decoding of the "
                          f"priors (measured model off by {error:.3g} on random regressions)",
                          hint="supported: cx = pcx + v0 dx pw, w = pw exp(v2 dw) and the y/h analogue, any order")
    return Measured(priors, priors_graph, variances, code, "xyxy" if x_first else "yxyx", units, error, name,
                     notes, loc_columns)
