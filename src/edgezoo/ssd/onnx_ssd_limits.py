"""An ONNX SSD's selection limits, read from the graph: NonMaxSuppression's thresholds and counts, the candidates
kept per class before it, the overall cap after it.

Where exporters put them:
- NonMaxSuppression (in the main graph, or inside an If / Loop: torchvision's batched_nms is exported inside an If):
  max_output_boxes_per_class, iou_threshold, score_threshold inputs; several NonMaxSuppression nodes (one per class)
  must agree;
- a score threshold applied before NonMaxSuppression: `score > thresh` (Greater / GreaterOrEqual against a
  constant on the scores' way to it, torchvision and batched_nms);
- candidates per class before NonMaxSuppression: a TopK on the scores' way to it (torchvision's topk_candidates),
  Caffe's nms_param.top_k exactly;
- the overall cap after it: the k of a TopK or the end of a Slice on the detection axis, computed by value
  (graphs.onnx_values: `Reshape(Min(200, n), [1])` is 200, never the reshape's 1).
Whatever is on the way and not understood is recorded in `unreadable`: the caller refuses and names the option,
rather than guessing. The values read are then checked against the graph's behaviour (ssd.onnx_ssd_behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.graphs.onnx_values import INT64_MAX, GraphIndex, all_nodes, scalar_bound, upper_bound

_COMPARE = {"Greater": 1, "GreaterOrEqual": 1, "Less": -1, "LessOrEqual": -1}
_UNLIMITED = INT64_MAX // 2


@dataclass
class SelectionLimits:
    nms_nodes: list[str]
    iou_threshold: float | None
    score_threshold: float | None
    per_class: int | None  # max_output_boxes_per_class (AFTER suppression); None: unlimited
    candidates: int | None  # per-class candidates BEFORE suppression (TopK); None: every prior
    total: int | None  # overall cap after suppression; None: none in the graph
    unreadable: list[str] = field(default_factory=list)  # "what (option to give)" the reader could not read

    @property
    def nms_node(self) -> str:
        return self.nms_nodes[0] if self.nms_nodes else "?"


def _float(g: GraphIndex, tensor: str) -> float | None:
    v = g.constant(tensor) if tensor else None
    # float32 constants: 0.05 is stored as 0.0500000007; 7 significant digits give back what was written
    return None if v is None or v.size != 1 else float(f"{float(v.reshape(-1)[0]):.7g}")


def _count(g: GraphIndex, tensor: str) -> tuple[int | None, bool]:
    """(limit, understood): limit None = unlimited."""
    v = scalar_bound(g, tensor)
    if v is None or np.isnan(v):
        return None, False
    if np.isinf(v) or v >= _UNLIMITED:
        return None, True
    return int(v), True


def _same(values: list[Any]) -> Any:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def find_nms(g: GraphIndex, box_concat: str) -> list[Any]:
    """The NonMaxSuppression nodes the box heads reach (main graph or If/Loop bodies)."""
    reached = {id(n) for n in g.downstream([box_concat])}
    nms = [n for n in all_nodes(g.model) if n.op_type == "NonMaxSuppression"]
    return [n for n in nms if id(n) in reached] or []


def _ancestors(g: GraphIndex, tensors: list[str], stop: set[str]) -> list[Any]:
    """Nodes computing `tensors` (upstream), not going past `stop` tensors."""
    seen: set[int] = set()
    order: list[Any] = []
    queue = [t for t in tensors if t]
    visited: set[str] = set()
    while queue:
        name = queue.pop()
        if name in visited or name in stop:
            continue
        visited.add(name)
        node = g.producers.get(name)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        queue.extend(i for i in node.input if i)
        owner = g.owner.get(id(node))
        if owner is not None and id(owner) not in seen:  # a subgraph node: its If/Loop's inputs lead further up
            queue.extend(i for i in owner.input if i)
    return order


def read_limits(model: Any, box_concat: str, class_concat: str, where: str = "model") -> SelectionLimits:
    """See the module docstring. RecipeError when the box heads reach no NonMaxSuppression."""
    g = GraphIndex(model)
    nms = find_nms(g, box_concat)
    if not nms:
        raise RecipeError(f"{where}: no NonMaxSuppression after the box heads: not an SSD with in-graph decoding",
                          hint="export the heads with --outputs instead, or keep the post-processing in the graph")
    unreadable: list[str] = []
    iou = _same([_float(g, n.input[3]) if len(n.input) > 3 else None for n in nms])
    nms_scores = [_float(g, n.input[4]) if len(n.input) > 4 and n.input[4] else None for n in nms]
    per_class_values = []
    for n in nms:
        if len(n.input) < 3 or not n.input[2]:
            per_class_values.append(0)  # ONNX's default: no box at all
            continue
        value, ok = _count(g, n.input[2])
        if not ok:
            unreadable.append("NonMaxSuppression's max_output_boxes_per_class (--keep-top-k)")
        per_class_values.append(value)
    per_class = _same(per_class_values)
    if per_class == 0:
        raise RecipeError(f"{where}: NonMaxSuppression {nms[0].name or nms[0].output[0]!r} keeps 0 boxes per class "
                          "(max_output_boxes_per_class missing or 0)", hint="the graph outputs no detection")

    # Before NonMaxSuppression, on the scores' way to it: thresholds and per-class TopK.
    scored = {id(d) for d in g.downstream([class_concat])}
    before = [n for n in _ancestors(g, [i for n in nms for i in n.input[:2]], {class_concat, box_concat})
              if id(n) in scored]
    thresholds = [v for v in nms_scores if v is not None]
    for node in before:
        if node.op_type in _COMPARE and len(node.input) == 2:
            const = [_float(g, i) for i in node.input]
            if (const[1] is not None) != (const[0] is not None):
                thresholds.append(const[1] if const[1] is not None else const[0])
    score = _same(thresholds) if thresholds else None
    if len(set(thresholds)) > 1:
        unreadable.append(f"score threshold: several ({sorted(set(thresholds))}) (--confidence-threshold)")
    topk = []
    for node in before:
        if node.op_type == "TopK" and len(node.input) > 1:
            value, ok = _count(g, node.input[1])
            if not ok:
                unreadable.append("the candidates per class before NonMaxSuppression (TopK k) (--top-k)")
            elif value is not None:
                topk.append(value)
    candidates = _same(topk) if topk else None
    if len(set(topk)) > 1:
        unreadable.append(f"candidates per class: several TopK ({sorted(set(topk))}) (--top-k)")

    # After it: the overall cap.
    caps = []
    for node in g.downstream([o for n in nms for o in n.output]):
        if node.op_type == "TopK" and len(node.input) > 1:
            value, ok = _count(g, node.input[1])
        elif node.op_type == "Slice" and len(node.input) >= 3:
            value, ok = _slice_cap(g, node)
        else:
            continue
        if not ok:
            unreadable.append(f"the overall detection limit ({node.op_type} {node.name or node.output[0]!r}) "
                              "(--keep-top-k)")
        elif value is not None:
            caps.append(value)
    return SelectionLimits([n.name or n.output[0] for n in nms], iou, score, per_class, candidates,
                           min(caps) if caps else None, unreadable)


def _slice_cap(g: GraphIndex, node: Any) -> tuple[int | None, bool]:
    """A Slice on the detection axis (axis 0 of what NMS selected) from 0 caps the count at its end; a Slice on
    another axis (a column of the selected triplets, a box coordinate) or of a shape vector (shape arithmetic)
    caps nothing."""
    if upper_bound(g, node.input[0]) is not None:  # the data is a shape expression, not detections
        return None, True
    axes = g.constant(node.input[3]) if len(node.input) > 3 and node.input[3] else np.array([0])
    if axes is None:
        return None, False
    axes = [int(a) for a in np.asarray(axes).reshape(-1)]
    shape = g.shapes.get(node.input[0])
    rank = len(shape) if shape else None
    axes = [a + rank if a < 0 and rank else a for a in axes]
    if 0 not in axes:
        return None, True
    pos = axes.index(0)
    starts, ends = upper_bound(g, node.input[1]), upper_bound(g, node.input[2])
    if starts is None or ends is None or len(starts) <= pos or len(ends) <= pos:
        return None, False
    start, end = float(starts[pos]), float(ends[pos])
    if np.isinf(end) or end >= _UNLIMITED:
        return None, True
    if start != 0 or end < 0:
        return None, False
    return int(end), True
