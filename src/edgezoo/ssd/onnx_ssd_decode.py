"""Read an ONNX SSD's in-graph decoding by MEASURING it: priors, box coding, variances, corner order, units.

Exporters write the same decoding in many shapes: one [N, 4] prior constant, two [1, N, 2], per-column [N] / [N, 1]
constants folded by the exporter (torchvision), constants already multiplied by a variance (Grappler folds
`size / 10`), priors in pixels or normalised, (cx, cy, w, h) or (y, x, h, w). Rather than recognising each, the
decoding is run (ssd.onnx_ssd_probe: the graph's tail alone, on regressions we choose) and read from what it
does:
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

The prior values the graph holds (whatever their form) are found as the per-prior tensors feeding the decoding and
expressed as scale x (cx | cy | w | h | x1 | y1 | x2 | y2): `replace_priors` rewrites them all, then measures
again to prove the decoding now uses the new priors.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import CodeType, DataLayout, ScoreConverter
from edgezoo.graphs import onnx_model
from edgezoo.graphs.onnx_values import GraphIndex
from edgezoo.ssd.onnx_heads import HeadSet, downstream_ops
from edgezoo.ssd.onnx_ssd_behaviour import probe_behaviour
from edgezoo.ssd.onnx_ssd_limits import read_limits
from edgezoo.ssd.onnx_ssd_probe import TailProbe, decode_rows

FIT_TOLERANCE = 1e-4  # normalised box units: a decoding the measured model describes is exact to float32 (~1e-6)
DELTA = 0.25  # regression step of the measurement
QUANTITIES = ("cx", "cy", "w", "h", "x1", "y1", "x2", "y2")
_STOP = {"NonMaxSuppression", "If", "Loop", "Scan", "NonZero", "TopK", "GatherND"}


@dataclass(frozen=True)
class DerivedConstant:
    """A per-prior tensor the decoding reads: column c = scales[c] x quantities[c] of the priors (graph units)."""

    name: str
    shape: tuple[int, ...]
    axis: int  # the axis with one entry per prior
    quantities: tuple[str, ...]
    scales: tuple[float, ...]
    computed: bool  # written by nodes (rewritten as a new initializer), not an initializer / Constant

    def value(self, priors_graph: np.ndarray) -> np.ndarray:
        """This tensor's value for the given priors (graph units)."""
        columns = np.stack([s * _quantity(priors_graph, q) for q, s in zip(self.quantities, self.scales)], axis=1)
        rest = [d for k, d in enumerate(self.shape) if k != self.axis]
        return np.moveaxis(columns.reshape([len(priors_graph)] + rest), 0, self.axis)


@dataclass(frozen=True)
class GraphDecode:
    priors: np.ndarray  # [N, 4] (cx, cy, w, h) normalised, in the order the head concats give the priors
    prior_tensors: tuple[DerivedConstant, ...]
    variances: tuple[float, float, float, float]  # (x, y, w, h)
    code_type: CodeType  # CENTER_SIZE: regressions (dx, dy, dw, dh); CENTER_SIZE_YXHW: (dy, dx, dh, dw)
    box_order: str  # "xyxy" | "yxyx": the decoded boxes' corner order
    fit_error: float  # worst |measured model - graph| on a random regression (normalised)
    score_converter: ScoreConverter
    background_label_id: int  # -1: no background column
    score_threshold: float | None
    iou_threshold: float | None
    per_class: int | None  # NonMaxSuppression max_output_boxes_per_class (AFTER suppression); None: unlimited
    total: int | None  # the overall cap after NMS; None: none
    nms_node: str
    label_offset: int = 0  # the graph's output label minus Caffe's class index (e.g. -1: 0-based foreground labels)
    candidates: int | None = None  # per-class candidates kept BEFORE NMS (torchvision's topk_candidates)
    units: tuple[float, float] = (1.0, 1.0)  # graph units per normalised unit along x, y (pixels: image size)
    decoded: str = ""  # the decoded-box tensor measured
    unexplained: tuple[str, ...] = ()  # per-prior tensors of the decoding that are not scale x a prior quantity
    notes: tuple[str, ...] = ()
    outputs: Any = None  # ssd.onnx_ssd_behaviour.OutputRoles: the original's detection outputs, as probed
    output_scale: tuple[float, float] = (1.0, 1.0)  # the original's output box units per normalised unit (x, y)
    probe: dict[str, Any] = field(default_factory=dict)  # what a re-measurement needs


def _quantity(p: np.ndarray, q: str) -> np.ndarray:
    cx, cy, w, h = p.T
    return {"cx": cx, "cy": cy, "w": w, "h": h, "x1": cx - w / 2, "y1": cy - h / 2, "x2": cx + w / 2,
            "y2": cy + h / 2}[q]


def constant_value(model: Any, tensor: str) -> np.ndarray | None:
    """Value of an initializer or Constant node output (None otherwise)."""

    return GraphIndex(model).constant(tensor)


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
        axes.append(_Axis((lo, hi), roles["centre"][0], roles["size"][0], _round(roles["centre"][1]),
                          _round(roles["size"][1])))
    return axes[0], axes[1]


def _round(v: float) -> float:
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
class _Measured:
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


def measure(model: Any, heads: HeadSet, image: tuple[int, int], where: str) -> _Measured:
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
    return _Measured(priors, priors_graph, variances, code, "xyxy" if x_first else "yxyx", units, error, name,
                     notes, loc_columns)


def _region_inputs(model: Any, box_concat: str, decoded: str) -> tuple[Any, list[str]]:
    """(graph index, tensors the decoding -- box concat to decoded boxes -- reads from outside itself)."""

    g = GraphIndex(model)
    down = {id(x) for x in g.downstream([box_concat])}
    region, queue, seen = [], [decoded], set()
    while queue:
        node = g.producers.get(queue.pop())
        if node is None or id(node) in seen or id(node) not in down:
            continue
        seen.add(id(node))
        region.append(node)
        queue.extend(i for i in node.input if i)
    inside = {o for node in region for o in node.output}
    return g, list(dict.fromkeys(i for node in region for i in node.input
                                 if i and i not in inside and i != box_concat))


def computed_inputs(model: Any, box_concat: str, decoded: str) -> list[str]:
    """The decoding's outside inputs that nodes compute (not initializers / Constants): valued by a probe run."""
    g, external = _region_inputs(model, box_concat, decoded)
    return [i for i in external if g.constant(i) is None]


def _match(col: np.ndarray, priors_graph: np.ndarray) -> tuple[str, float] | None:
    """(quantity, scale) with col == scale x quantity of the priors, or None."""
    for q in QUANTITIES:
        f = _quantity(priors_graph, q)
        denom = float(f @ f)
        if denom == 0:
            continue
        s = float(f @ col) / denom
        if np.abs(col - s * f).max() <= 1e-5 * max(float(np.abs(col).max()), 1e-12):
            rounded = _round(s)
            return q, rounded if abs(rounded - s) <= 1e-6 * abs(s) else s
    return None


def _derived(model: Any, box_concat: str, decoded: str, values: dict[str, np.ndarray], n: int,
             priors_graph: np.ndarray) -> tuple[list[DerivedConstant], list[str], dict[str, np.ndarray]]:
    """The per-prior tensors the decoding reads, each as scale x prior quantity; the names of those that are
    not (`values`: the computed inputs' values); and the quantities as the graph holds them (value / scale)."""
    g, external = _region_inputs(model, box_concat, decoded)
    found, unexplained = [], []
    held: dict[str, np.ndarray] = {}
    for name in external:
        value = g.constant(name)
        computed = value is None
        if computed:
            value = values.get(name)
        if value is None or value.dtype.kind != "f" or n not in value.shape:
            continue
        axis = list(value.shape).index(n)
        columns = np.moveaxis(value, axis, 0).reshape(n, -1).astype(np.float64)
        terms = [_match(col, priors_graph) for col in columns.T]
        if any(t is None for t in terms):
            unexplained.append(name)
            continue
        found.append(DerivedConstant(name, tuple(value.shape), axis, tuple(t[0] for t in terms),  # type: ignore[index]
                                     tuple(t[1] for t in terms), computed))  # type: ignore[index]
        for col, (q, s) in zip(columns.T, terms):  # type: ignore[misc]
            held.setdefault(q, col / s)
    return found, unexplained, held


def _exact_priors(held: dict[str, np.ndarray], measured: np.ndarray) -> np.ndarray:
    """The priors from the values the graph holds (float32 constants, exact) when they give all four
    quantities and agree with the measurement; else the measurement (decoded corners carry float32 rounding)."""
    def axis(c: str, s: str, lo: str, hi: str) -> tuple[np.ndarray, np.ndarray] | None:
        centre = held.get(c)
        size = held.get(s)
        if size is None and lo in held and hi in held:
            size = held[hi] - held[lo]
        if centre is None and size is not None:
            centre = held[lo] + size / 2 if lo in held else held[hi] - size / 2 if hi in held else None
        return None if centre is None or size is None else (centre, size)

    x, y = axis("cx", "w", "x1", "x2"), axis("cy", "h", "y1", "y2")
    if x is None or y is None:
        return measured
    exact = np.stack([x[0], y[0], x[1], y[1]], axis=1)
    scale = float(np.abs(measured).max()) + 1.0
    return exact if float(np.abs(exact - measured).max()) <= 1e-5 * scale else measured


def read_decode(model: Any, heads: HeadSet, where: str = "model", image: tuple[int, int] | None = None,
                given: Collection[str] = ()) -> GraphDecode:
    """The in-graph decoding and selection of `model` (static input shape, shapes inferred) whose heads are
    `heads`; RecipeError when the graph has no decodable SSD tail, or a limit cannot be read for sure (`given`: the
    limits the user set as options, which need not be read)."""

    n = heads.num_priors
    if n is None:
        raise RecipeError(f"{where}: the head grids are unknown", hint="give the input a static shape (--inputs)")
    limits = read_limits(model, heads.box_concat, heads.class_concat, where)
    image = image or _image_size(model)
    m = measure(model, heads, image, where)
    computed = computed_inputs(model, heads.box_concat, m.tensor)
    base_values: dict[str, np.ndarray] = {}
    if computed:
        probe = TailProbe(model, heads.box_concat, heads.class_concat, n, heads.num_classes,
                          heads.layout is DataLayout.INTERLEAVED, outputs=computed, ranks=heads.ranks)
        base_values = probe.run(np.zeros((n, 4)), np.zeros((n, heads.num_classes)))
    derived, unexplained, held = _derived(model, heads.box_concat, m.tensor, base_values, n, m.priors_graph)
    exact = _exact_priors(held, m.priors_graph)
    units = np.array([m.units[0], m.units[1], m.units[0], m.units[1]])
    ops = downstream_ops(model, heads.class_concat)
    converter = ScoreConverter.SOFTMAX if "Softmax" in ops else ScoreConverter.SIGMOID if "Sigmoid" in ops \
        else ScoreConverter.IDENTITY
    decode = GraphDecode(
        priors=exact / units, prior_tensors=tuple(derived), variances=m.variances, code_type=m.code_type,
        box_order=m.box_order, fit_error=m.error, score_converter=converter, background_label_id=0,
        score_threshold=limits.score_threshold, iou_threshold=limits.iou_threshold, per_class=limits.per_class,
        total=limits.total, nms_node=limits.nms_node, candidates=limits.candidates, units=m.units,
        decoded=m.tensor, unexplained=tuple(unexplained), notes=tuple(m.notes),
        probe={"loc_columns": m.loc_columns, "image": image, "limits": limits})
    return probe_behaviour(model, heads, decode, limits, where, given)


def _image_size(model: Any) -> tuple[int, int]:
    """(height, width) of the one 4-D image input (NCHW or NHWC), for priors in pixels."""

    for inp in onnx_model.graph_inputs(model):
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        if len(dims) == 4:
            return (dims[1], dims[2]) if dims[3] in (1, 3) and dims[1] not in (1, 3) else (dims[2], dims[3])
    return (1, 1)


def replace_priors(model: Any, decode: GraphDecode, priors: np.ndarray, heads: HeadSet | None = None) -> Any:
    """A copy of `model` whose decoding uses `priors` ([N, 4] cx, cy, w, h normalised, same order): every per-prior
    tensor the decoding reads is rewritten from them. With `heads`, the decoding is measured again and must give
    exactly `priors` (RecipeError otherwise)."""
    import onnx
    from onnx import numpy_helper


    if decode.unexplained:
        raise RecipeError(f"cannot rewrite the graph's priors: {', '.join(decode.unexplained[:3])} hold per-prior "
                          "values the decoding reads that are not derived from its priors",
                          hint="the prior constants of this decoding are not recognised")
    units = np.array([decode.units[0], decode.units[1], decode.units[0], decode.units[1]])
    graph_priors = np.asarray(priors, np.float64) * units
    out = onnx.ModelProto()
    out.CopyFrom(model)
    renamed: dict[str, str] = {}
    for t in decode.prior_tensors:
        value = t.value(graph_priors)
        if t.computed:
            new = f"{t.name}__priors"
            dtype = np.float32
            out.graph.initializer.append(numpy_helper.from_array(value.astype(dtype), new))
            renamed[t.name] = new
            continue
        done = False
        for init in out.graph.initializer:
            if init.name == t.name:
                init.CopyFrom(numpy_helper.from_array(value.astype(numpy_helper.to_array(init).dtype), t.name))
                done = True
        for node in out.graph.node:
            if node.op_type == "Constant" and node.output and node.output[0] == t.name:
                for attr in node.attribute:
                    if attr.name == "value":
                        dtype = numpy_helper.to_array(attr.t).dtype
                        attr.t.CopyFrom(numpy_helper.from_array(value.astype(dtype), t.name))
                        done = True
        if not done:
            raise RecipeError(f"prior constant {t.name!r} vanished from the graph")
    if renamed:
        for node in out.graph.node:
            node.input[:] = [renamed.get(i, i) for i in node.input]
        out = onnx_model.cut(out, onnx_model.output_names(out))
    if heads is not None:
        image = decode.probe.get("image", (1, 1))
        again = measure(onnx_model.infer_shapes(out), heads, image, "the rewritten model")
        worst = float(np.abs(again.priors - priors).max())
        if worst > 1e-5:
            raise RecipeError(f"rewriting the graph's priors did not take: the decoding still differs by {worst:.3g}",
                              hint="the prior tensors of this decoding are not all recognised")
    return out


_CLIPS = {"Clip", "Min", "Max"}


def without_clipping(model: Any, decode: GraphDecode) -> Any | None:
    """A copy of `model` whose decoded boxes reach NonMaxSuppression unclipped (the Clip / Min / Max against constants
    between the decoded boxes and the selection bypassed), or None when the graph does not clip them. TIDL's detection
    layer does not clip before NMS: against this variant, parity measures the conversion alone."""
    import onnx

    g = GraphIndex(model)
    clips = []
    for node in g.downstream([decode.decoded]):
        if g.owner.get(id(node)) is not None or node.op_type in ("NonMaxSuppression", "If", "Loop", "TopK"):
            continue
        if node.op_type in _CLIPS and node.input:
            others = [i for i in node.input[1:] if i]
            if others and all(g.constant(i) is not None for i in others):
                clips.append(node)
    if not clips:
        return None
    out = onnx.ModelProto()
    out.CopyFrom(model)
    bypass = {n.output[0]: n.input[0] for n in clips}
    for node in out.graph.node:
        node.input[:] = [_through(bypass, i) for i in node.input]
    for graph in list(_subgraphs(out.graph)):
        for node in graph.node:
            node.input[:] = [_through(bypass, i) for i in node.input]
    return out


def _through(bypass: dict[str, str], name: str) -> str:
    while name in bypass:
        name = bypass[name]
    return name


def _subgraphs(graph: Any) -> Any:
    for node in graph.node:
        for attr in node.attribute:
            for sub in list(attr.graphs) + ([attr.g] if attr.HasField("g") else []):
                yield sub
                yield from _subgraphs(sub)
