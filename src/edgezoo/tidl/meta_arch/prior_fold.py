"""Fold the prior sizes Caffe semantics cannot express into the box head, so TIDL decodes MLPerf's boxes exactly.

MLPerf clamps its default boxes to [0, 1]; a prototxt can only describe unclamped Caffe priors, so the last head's
2:1 and 1:2 boxes are 1.2304 wide in TIDL and 1.0 in MLPerf. With CENTER_SIZE coding

    cx = pcx + v0 * dx * pw        w = pw * exp(v2 * dw)

a prior width pw_tidl = pw_mlperf / r decodes like pw_mlperf when dx is scaled by r and dw shifted by ln(r) / v2
(the same for y/h). Both are affine in the conv output, so they go into the box conv's weights and bias: per anchor
and coordinate channel, exactly, at every location. Only size ratios that are the same at every location can be
folded (clamping of sizes is; centre differences are not, and are left alone and reported).

The graph's own post-processing still decodes with MLPerf's boxes, so after folding model.onnx's in-graph outputs
differ from the original's for the affected priors; TIDL replaces that part, and the verification compares the
prototxt's detections with the ORIGINAL model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import CodeType, DataLayout
from edgezoo.ssd.onnx_heads import HeadSet
from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, mlperf_default_boxes, tidl_priors
from edgezoo.tidl.meta_arch.prototxt import CaffeSsd


@dataclass
class FoldResult:
    anchors: list[tuple[int, int, float, float]] = field(default_factory=list)  # (head, anchor, w ratio, h ratio)
    priors: int = 0  # priors whose decoding changed
    unfoldable: list[str] = field(default_factory=list)  # differences left as they are (e.g. centres)


def _mlperf_per_head(spec: DefaultBoxSpec) -> list[np.ndarray]:
    """MLPerf boxes as [H, W, A, 4] per head (they are stored anchor-major)."""
    boxes = mlperf_default_boxes(spec)
    out, start = [], 0
    for a, (fh, fw) in zip(spec.boxes_per_location(), spec.feature_sizes()):
        n = a * fh * fw
        out.append(boxes[start:start + n].reshape(a, fh, fw, 4).transpose(1, 2, 0, 3))
        start += n
    return out


def _coords(code: CodeType) -> tuple[int, int, int, int]:
    """Channel row of (x centre, y centre, width, height) in a box head under the code type."""
    if code is CodeType.CENTER_SIZE:
        return 0, 1, 2, 3
    if code is CodeType.CENTER_SIZE_YXHW:
        return 1, 0, 3, 2
    raise RecipeError(f"folding priors into the heads needs a centre-size code type, not {code.name}")


def _channel(layout: DataLayout, anchors: int, anchor: int, row: int, rows: int) -> int:
    return row * anchors + anchor if layout is DataLayout.INTERLEAVED else anchor * rows + row


class _Convs:
    """The head convs' weights and biases of a model copy, read and written as float64 arrays."""

    def __init__(self, model: Any) -> None:
        self.inits = {i.name: i for i in model.graph.initializer}
        self.producers = {n.output[0]: n for n in model.graph.node if n.output}
        self.model = model

    def get(self, tensor: str) -> tuple[Any, np.ndarray, np.ndarray]:
        from onnx import numpy_helper

        conv = self.producers[tensor]
        if conv.input[1] not in self.inits:
            raise RecipeError(f"head conv {conv.name or tensor!r}: its weights are not an initializer")
        w = numpy_helper.to_array(self.inits[conv.input[1]]).astype(np.float64)
        if len(conv.input) > 2 and conv.input[2]:
            b = numpy_helper.to_array(self.inits[conv.input[2]]).astype(np.float64)
        else:
            b = np.zeros(w.shape[0])
        return conv, w, b

    def _own(self, conv: Any, position: int) -> str:
        """The conv's own copy of a weight or bias: one shared by several convs (weight-shared FPN / PPN heads)
        is copied first, so rewriting this head leaves the others as they are."""
        from onnx import numpy_helper

        name = conv.input[position]
        users = sum(1 for n in self.model.graph.node for i in n.input if i == name)
        if users > 1:
            new = f"{name}__{conv.output[0]}"
            self.model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(self.inits[name]), new))
            self.inits[new] = self.model.graph.initializer[-1]
            conv.input[position] = new
            name = new
        return name

    def put(self, conv: Any, w: np.ndarray, b: np.ndarray) -> None:
        from onnx import numpy_helper

        weight = self._own(conv, 1)
        self.inits[weight].CopyFrom(numpy_helper.from_array(w.astype(np.float32), weight))
        if len(conv.input) > 2 and conv.input[2]:
            bias = self._own(conv, 2)
            self.inits[bias].CopyFrom(numpy_helper.from_array(b.astype(np.float32), bias))
        else:
            name = f"{conv.input[1]}_folded_bias"
            self.model.graph.initializer.append(numpy_helper.from_array(b.astype(np.float32), name))
            self.inits[name] = self.model.graph.initializer[-1]
            conv.input.append(name)


def _copy(model: Any) -> Any:
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _fold_head(convs: _Convs, tensor: str, anchors: int, layout: DataLayout, ratios: np.ndarray,
               variance: tuple[float, ...], code: CodeType) -> list[int]:
    """Fold per-anchor size ratios [A, 2] (w, h) into one box conv; returns the anchors changed."""
    x, y, wc, hc = _coords(code)
    conv, w, b = convs.get(tensor)
    changed = []
    for a in range(anchors):
        rw, rh = float(ratios[a, 0]), float(ratios[a, 1])
        if abs(rw - 1) < 1e-7 and abs(rh - 1) < 1e-7:
            continue
        for row, scale in ((x, rw), (y, rh)):  # centre offsets scale with the prior size
            c = _channel(layout, anchors, a, row, 4)
            w[c] *= scale
            b[c] *= scale
        b[_channel(layout, anchors, a, wc, 4)] += np.log(rw) / variance[wc]
        b[_channel(layout, anchors, a, hc, 4)] += np.log(rh) / variance[hc]
        changed.append(a)
    if changed:
        convs.put(conv, w, b)
    return changed


def fold_size_ratios(model: Any, heads: HeadSet, ratios: list[np.ndarray], variances: tuple[float, ...],
                     code: CodeType) -> tuple[Any, FoldResult]:
    """A copy of `model` whose box convs absorb, per head, the size ratios [A, 2] (w, h) wanted / TIDL's prior:
    TIDL then decodes the wanted boxes with its own priors (see the module docstring). `variances` in the code
    type's order."""
    out = _copy(model)
    convs = _Convs(out)
    result = FoldResult()
    for k, (head, r) in enumerate(zip(heads.heads, ratios)):
        for a in _fold_head(convs, head.box_tensor, head.boxes_per_location, heads.layout, r, variances, code):
            result.anchors.append((k, a, float(r[a, 0]), float(r[a, 1])))
            result.priors += head.grid[0] * head.grid[1] if head.grid else 0
    return out, result


def fold_centre_offsets(model: Any, heads: HeadSet, offsets: dict[int, np.ndarray], code: CodeType) -> Any:
    """A copy of `model` where the box head k of `offsets` adds offsets[k] [H, W, A, 2] (x, y centre, in
    regression units: (graph centre - TIDL centre) / (variance x TIDL prior size)) to its centre channels: an Add of
    a constant after the conv, whose output takes the conv's name (the box_input TIDL matches). Centres that differ
    only at some locations (clamped at the image border) cannot go into a conv's bias; this is exact at each."""
    from onnx import helper, numpy_helper

    out = _copy(model)
    x, y, _, _ = _coords(code)
    nodes = list(out.graph.node)
    for k, off in offsets.items():
        head = heads.heads[k]
        a = head.boxes_per_location
        fh, fw = head.grid  # type: ignore[misc]
        const = np.zeros((1, a * 4, fh, fw), np.float32)
        for anchor in range(a):
            const[0, _channel(heads.layout, a, anchor, x, 4)] = off[:, :, anchor, 0]
            const[0, _channel(heads.layout, a, anchor, y, 4)] = off[:, :, anchor, 1]
        position = next(i for i, n in enumerate(nodes) if n.output and n.output[0] == head.box_tensor)
        conv = nodes[position]
        raw = f"{head.box_tensor}__conv"
        conv.output[0] = raw
        name = f"{head.box_tensor}__centre_offsets"
        out.graph.initializer.append(numpy_helper.from_array(const, name))
        nodes.insert(position + 1, helper.make_node("Add", [raw, name], [head.box_tensor],
                                                    name=f"{head.box_tensor}__centres"))
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


def permute_anchors(model: Any, heads: HeadSet, orders: list[tuple[int, ...]]) -> Any:
    """A copy of `model` whose box and class convs output their boxes in `orders[k]` (new box i = old box
    orders[k][i]) for every head k, both layouts."""
    out = _copy(model)
    convs = _Convs(out)
    for head, order in zip(heads.heads, orders):
        if list(order) == list(range(len(order))):
            continue
        a = head.boxes_per_location
        for tensor, rows in ((head.box_tensor, 4), (head.class_tensor, heads.num_classes)):
            conv, w, b = convs.get(tensor)
            index = [_channel(heads.layout, a, order[i], r, rows) for i, r in
                     sorted(((i, r) for i in range(a) for r in range(rows)),
                            key=lambda ir: _channel(heads.layout, a, ir[0], ir[1], rows))]
            convs.put(conv, w[index], b[index])
    return out


def fold_clamped_priors(model: Any, heads: HeadSet, ssd: CaffeSsd, spec: DefaultBoxSpec) -> tuple[Any, FoldResult]:
    """A copy of `model` whose box convs absorb per-anchor size ratios MLPerf / TIDL (see the module docstring)."""
    dop = ssd.detection_output_param
    if dop is None or dop.code_type is not CodeType.CENTER_SIZE:
        raise RecipeError("folding priors into the heads needs code_type CENTER_SIZE")
    out = _copy(model)
    convs = _Convs(out)
    result = FoldResult()
    for k, (head, mlperf) in enumerate(zip(heads.heads, _mlperf_per_head(spec))):
        param = ssd.prior_box_param[k]
        tidl = tidl_priors(param, mlperf.shape[:2], param.image_size(ssd.in_height, ssd.in_width))  # type: ignore
        if tidl.shape != mlperf.shape:
            raise RecipeError(f"head {k}: TIDL priors {tidl.shape} and MLPerf boxes {mlperf.shape} do not align")
        if np.abs(tidl[..., :2] - mlperf[..., :2]).max() > 1e-5:
            result.unfoldable.append(f"head {k}: centres differ by up to "
                                     f"{np.abs(tidl[..., :2] - mlperf[..., :2]).max():.3g}")
        ratio = (mlperf[..., 2:] / tidl[..., 2:]).reshape(-1, head.boxes_per_location, 2)  # [H*W, A, 2]
        ratios = np.ones((head.boxes_per_location, 2))
        for a in range(head.boxes_per_location):
            if np.ptp(ratio[:, a], axis=0).max() > 1e-6:
                result.unfoldable.append(f"head {k}, anchor {a}: size ratio varies with the location")
            else:
                ratios[a] = ratio[0, a]
        for a in _fold_head(convs, head.box_tensor, head.boxes_per_location, heads.layout, ratios,
                            param.variance, CodeType.CENTER_SIZE):
            result.anchors.append((k, a, float(ratios[a, 0]), float(ratios[a, 1])))
            result.priors += ratio.shape[0]
    return out, result
