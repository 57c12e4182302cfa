"""Read an ONNX SSD's in-graph decoding and selection: priors, box coding, variances, corner order, units
(measured: ssd.onnx_ssd_measure), limits (read by value: ssd.onnx_ssd_limits, confirmed on planted detections:
ssd.onnx_ssd_behaviour).

Exporters write the same decoding in many shapes: one [N, 4] prior constant, two [1, N, 2], per-column [N] / [N, 1]
constants folded by the exporter (torchvision), constants already multiplied by a variance (Grappler folds
`size / 10`), priors in pixels or normalised, (cx, cy, w, h) or (y, x, h, w). Rather than recognising each, the
decoding is run and read from what it does. The prior values the graph holds (whatever their form) are found as
the per-prior tensors feeding the decoding and expressed as scale x (cx | cy | w | h | x1 | y1 | x2 | y2):
ssd.onnx_ssd_rewrite.replace_priors rewrites them all, then measures again to prove the decoding now uses the new
priors.
"""

from __future__ import annotations

from collections.abc import Collection
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
from edgezoo.ssd.onnx_ssd_measure import measure, rounded
from edgezoo.ssd.onnx_ssd_probe import TailProbe

QUANTITIES = ("cx", "cy", "w", "h", "x1", "y1", "x2", "y2")


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
            near = rounded(s)
            return q, near if abs(near - s) <= 1e-6 * abs(s) else s
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


