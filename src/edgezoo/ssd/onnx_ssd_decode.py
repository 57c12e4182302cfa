"""Read an ONNX SSD's in-graph decoding: its priors, box coding, score converter and NMS limits, from the graph.

A PyTorch SSD export (MLPerf's ResNet34-SSD and its kind) decodes inside the graph: the raw box concat goes through
per-coordinate Mul/Add/Exp with two prior constants (xy and wh, [1, N, 2]) or one ([N, 4]), the class concat through
Softmax or Sigmoid, and both into NonMaxSuppression. Nothing here trusts names or a card:

- the decoder's input and NonMaxSuppression are found by structure (the head concats come from graphs.onnx_heads);
- prior candidates are the float constants with N rows (N = the heads' prior count) and 2 or 4 columns;
- which constant is centres and which sizes, the regression order (dx, dy, dw, dh) or (dy, dx, dh, dw), the order
  of the decoded corners and the variances are MEASURED: the model is run once on a seeded input with the raw loc and
  the boxes fed to NonMaxSuppression as extra outputs, every hypothesis is fitted by least squares, and the one that
  reproduces the graph's boxes (worst error below FIT_TOLERANCE) wins; none is an exit-2 error;
- score threshold, IoU threshold and per-class limit are NonMaxSuppression's constant inputs; the total limit is the
  constant a TopK after it is capped at (k = Min(count, T) or a constant k). What is not in the graph stays None
  and is taken from options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import CodeType, DataLayout, ScoreConverter
from edgezoo.graphs import onnx_model
from edgezoo.ssd.onnx_heads import HeadSet, downstream_ops

FIT_TOLERANCE = 1e-4  # normalised box units: decoded boxes are float32, errors are ~1e-7 when the hypothesis holds


@dataclass(frozen=True)
class PriorTensor:
    """A graph constant holding priors: its tensor name and which of (cx, cy, w, h) its columns are."""

    name: str
    columns: tuple[int, ...]  # indices into (cx, cy, w, h)
    shape: tuple[int, ...]


@dataclass(frozen=True)
class GraphDecode:
    priors: np.ndarray  # [N, 4] (cx, cy, w, h) normalised, in the order the head concats give the priors
    prior_tensors: tuple[PriorTensor, ...]
    variances: tuple[float, float, float, float]
    code_type: CodeType  # CENTER_SIZE: regressions (dx, dy, dw, dh); CENTER_SIZE_YXHW: (dy, dx, dh, dw)
    box_order: str  # "xyxy" | "yxyx": the decoded boxes' corner order (and so the original's output boxes)
    fit_error: float  # worst |decoded - graph| of the winning hypothesis
    score_converter: ScoreConverter
    background_label_id: int  # -1: no background column
    score_threshold: float | None
    iou_threshold: float | None
    per_class: int | None  # NonMaxSuppression max_output_boxes_per_class (AFTER suppression)
    total: int | None  # the overall cap after NMS
    nms_node: str
    label_offset: int = 0  # the graph's output label minus Caffe's class index (e.g. -1: 0-based foreground labels)


def constant_value(model: Any, tensor: str) -> np.ndarray | None:
    """Value of an initializer or Constant node output (None otherwise)."""
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == tensor:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output and node.output[0] == tensor:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def _consumers(model: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _downstream(model: Any, start: str) -> list[Any]:
    """Nodes reachable from tensor `start`, breadth first."""
    users = _consumers(model)
    seen, order, queue = set(), [], [start]
    while queue:
        tensor = queue.pop(0)
        for node in users.get(tensor, []):
            if id(node) in seen:
                continue
            seen.add(id(node))
            order.append(node)
            queue.extend(node.output)
    return order


def _scalar(model: Any, tensor: str) -> float | None:
    if not tensor:
        return None
    v = constant_value(model, tensor)
    # float32 constants: 0.05 is stored as 0.0500000007; 7 significant digits give back what was written
    return None if v is None or v.size != 1 else float(f"{float(v.reshape(-1)[0]):.7g}")


def _total_limit(model: Any, nms: Any) -> int | None:
    """The k of the first TopK after NonMaxSuppression: a constant, or the constant side of Min(count, T)."""
    producers = onnx_model.producers(model)
    topk = next((n for n in _downstream(model, nms.output[0]) if n.op_type == "TopK"), None)
    if topk is None or len(topk.input) < 2:
        return None
    queue, seen = [topk.input[1]], set()
    while queue:
        tensor = queue.pop(0)
        if tensor in seen:
            continue
        seen.add(tensor)
        v = _scalar(model, tensor)
        if v is not None:
            if v >= 1:  # the count side is never constant
                return int(v)
            continue
        node = producers.get(tensor)
        if node is not None and node.op_type in ("Min", "Cast", "Unsqueeze", "Squeeze", "Reshape", "Identity"):
            queue.extend(node.input)
    return None


def _label_offset(model: Any, nms: Any, background: int) -> int:
    """The graph's label minus Caffe's class index: the int constants added to NonMaxSuppression's class column on
    its way to a graph output, less the dropped background column (Caffe counts it, the graph's NMS does not)."""
    outputs = {o.name for o in model.graph.output}
    users = _consumers(model)
    column = next((n.output[0] for n in users.get(nms.output[0], []) if n.op_type == "Gather"
                   and _scalar(model, n.input[1]) == 1 and _attr_int(n, "axis", 0) == 1), None)
    queue, added = [(column, 0)] if column else [], None
    while queue:
        tensor, offset = queue.pop(0)
        if tensor in outputs:
            added = offset
            break
        for node in users.get(tensor, []):
            if node.op_type in ("Gather", "Unsqueeze", "Squeeze", "Reshape", "Cast", "Identity") and \
                    node.input[0] == tensor:
                queue.append((node.output[0], offset))
            elif node.op_type in ("Add", "Sub") and len(node.input) == 2:
                other = node.input[1] if node.input[0] == tensor else node.input[0]
                v = _scalar(model, other)
                if v is not None and v == int(v) and (node.op_type == "Add" or node.input[0] == tensor):
                    queue.append((node.output[0], offset + int(v) * (1 if node.op_type == "Add" else -1)))
    # no traceable label output: the labels are taken to be Caffe's class index
    return 0 if added is None else added - (1 if background == 0 else 0)


def _prior_candidates(model: Any, n: int) -> list[tuple[str, np.ndarray]]:
    """Float constants shaped [N, 2|4] (any leading 1s)."""
    from onnx import numpy_helper

    found = []
    values = [(i.name, i) for i in model.graph.initializer]
    values += [(node.output[0], next((a.t for a in node.attribute if a.name == "value"), None))
               for node in model.graph.node if node.op_type == "Constant" and node.output]
    for name, proto in values:
        if proto is None or proto.data_type not in (1, 11) or int(np.prod(proto.dims)) not in (2 * n, 4 * n):
            continue
        dims = [d for d in proto.dims]
        while dims and dims[0] == 1:
            dims = dims[1:]
        if len(dims) == 2 and dims[0] == n and dims[1] in (2, 4):
            found.append((name, numpy_helper.to_array(proto).reshape(n, dims[1]).astype(np.float64)))
    return found


def _run(model: Any, outputs: Sequence[str], seed: int = 0) -> dict[str, np.ndarray]:
    """The model's values of `outputs` on one seeded input (onnxruntime; inputs must be static)."""
    import onnxruntime as ort

    probe = onnx_model.add_outputs(model, [o for o in outputs if o not in onnx_model.output_names(model)])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    feed = {}
    for inp in sess.get_inputs():
        if not all(isinstance(d, int) for d in inp.shape):
            raise RecipeError(f"input {inp.name!r} has shape {inp.shape}: give it a static shape first",
                              hint="--inputs NAME:1x3xHxW")
        feed[inp.name] = rng.uniform(-1, 1, inp.shape).astype(np.float32)
    return dict(zip(outputs, sess.run(list(outputs), feed)))


def _fit(loc: np.ndarray, priors: np.ndarray, decoded: np.ndarray, yx: bool, box_yx: bool
         ) -> tuple[float, tuple[float, float, float, float]]:
    """Worst reconstruction error and variances for one hypothesis (inf when it cannot hold)."""
    rows = [1, 0, 3, 2] if yx else [0, 1, 2, 3]  # loc columns -> (dx, dy, dw, dh)
    d = loc[:, rows]
    cols = [1, 0, 3, 2] if box_yx else [0, 1, 2, 3]  # decoded columns -> (x1, y1, x2, y2)
    b = decoded[:, cols]
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if np.any(w <= 0) or np.any(h <= 0) or np.any(priors[:, 2:] <= 0):
        return np.inf, (0.0, 0.0, 0.0, 0.0)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    pcx, pcy, pw, ph = priors.T

    def slope(y: np.ndarray, x: np.ndarray) -> float:
        denom = float(x @ x)
        return float(x @ y) / denom if denom > 0 else 0.0

    v = (slope(cx - pcx, d[:, 0] * pw), slope(cy - pcy, d[:, 1] * ph), slope(np.log(w / pw), d[:, 2]),
         slope(np.log(h / ph), d[:, 3]))
    v = tuple(float(round(x, 6)) for x in v)
    rcx, rcy = pcx + v[0] * d[:, 0] * pw, pcy + v[1] * d[:, 1] * ph
    rw, rh = pw * np.exp(v[2] * d[:, 2]), ph * np.exp(v[3] * d[:, 3])
    rebuilt = np.stack([rcx - rw / 2, rcy - rh / 2, rcx + rw / 2, rcy + rh / 2], axis=1)
    return float(np.abs(rebuilt - b).max()), v  # type: ignore[return-value]


def read_decode(model: Any, heads: HeadSet, where: str = "model") -> GraphDecode:
    """The in-graph decoding of `model` (static input shape) whose heads are `heads`; RecipeError when the graph
    has no decodable SSD tail (see the module docstring)."""
    n = heads.num_priors
    if n is None:
        raise RecipeError(f"{where}: the head grids are unknown", hint="give the input a static shape (--inputs)")
    tail = _downstream(model, heads.box_concat)
    nms = next((node for node in tail if node.op_type == "NonMaxSuppression"), None)
    if nms is None:
        raise RecipeError(f"{where}: no NonMaxSuppression after the box heads: not an SSD with in-graph decoding",
                          hint="export the heads with --outputs instead, or keep the post-processing in the graph")
    candidates = _prior_candidates(model, n)
    if not candidates:
        raise RecipeError(f"{where}: no prior constant with {n} rows (the heads' priors) in the graph",
                          hint="the priors must be constants of shape [N, 4] or two of [1, N, 2]")
    values = _run(model, [heads.box_concat, nms.input[0], nms.input[1]])
    raw = values[heads.box_concat].reshape(-1, 4, n)[0].T if heads.layout is DataLayout.INTERLEAVED \
        else values[heads.box_concat].reshape(-1, n, 4)[0]
    decoded = values[nms.input[0]].reshape(-1, n, 4)[0].astype(np.float64)
    if _attr_int(nms, "center_point_box", 0) == 1:  # (cx, cy, w, h) -> corners
        c = decoded
        decoded = np.stack([c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2, c[:, 0] + c[:, 2] / 2,
                            c[:, 1] + c[:, 3] / 2], axis=1)
    options: list[tuple[np.ndarray, tuple[PriorTensor, ...]]] = []
    for name, value in candidates:
        if value.shape[1] == 4:
            options.append((value, (PriorTensor(name, (0, 1, 2, 3), tuple(constant_value(model, name).shape)),)))
    pairs = [c for c in candidates if c[1].shape[1] == 2]
    for a_name, a in pairs:
        for b_name, b in pairs:
            if a_name != b_name:
                options.append((np.concatenate([a, b], axis=1), (
                    PriorTensor(a_name, (0, 1), tuple(constant_value(model, a_name).shape)),
                    PriorTensor(b_name, (2, 3), tuple(constant_value(model, b_name).shape)))))
    best: tuple[float, Any] = (np.inf, None)
    for priors, tensors in options:
        for yx in (False, True):
            for box_yx in (False, True):
                err, var = _fit(raw.astype(np.float64), priors, decoded, yx, box_yx)
                if err < best[0]:
                    best = (err, (priors, tensors, var, yx, box_yx))
    if best[1] is None or best[0] > FIT_TOLERANCE:
        raise RecipeError(f"{where}: the boxes fed to NonMaxSuppression are not a centre-size decoding of the box "
                          f"heads with the graph's prior constants (best fit off by {best[0]:.3g})",
                          hint="supported: cx = pcx + v0 dx pw, w = pw exp(v2 dw) and the y/h analogue, any order")
    priors, tensors, variances, yx, box_yx = best[1]
    scores = values[nms.input[1]]
    background = 0 if scores.shape[1] == heads.num_classes - 1 else -1
    ops = downstream_ops(model, heads.class_concat)
    converter = ScoreConverter.SOFTMAX if "Softmax" in ops else ScoreConverter.SIGMOID if "Sigmoid" in ops \
        else ScoreConverter.IDENTITY
    per_class = _scalar(model, nms.input[2]) if len(nms.input) > 2 else None
    return GraphDecode(
        priors=priors, prior_tensors=tensors, variances=variances,
        code_type=CodeType.CENTER_SIZE_YXHW if yx else CodeType.CENTER_SIZE, box_order="yxyx" if box_yx else "xyxy",
        fit_error=best[0], score_converter=converter, background_label_id=background,
        score_threshold=_scalar(model, nms.input[4]) if len(nms.input) > 4 else None,
        iou_threshold=_scalar(model, nms.input[3]) if len(nms.input) > 3 else None,
        per_class=None if per_class is None else int(per_class), total=_total_limit(model, nms),
        nms_node=nms.name or nms.output[0], label_offset=_label_offset(model, nms, background))


def _attr_int(node: Any, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def replace_priors(model: Any, decode: GraphDecode, priors: np.ndarray) -> Any:
    """A copy of `model` whose prior constants hold `priors` ([N, 4] cx, cy, w, h, same order) instead."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    for t in decode.prior_tensors:
        value = np.asarray(priors[:, list(t.columns)], dtype=np.float32).reshape(t.shape)
        proto = numpy_helper.from_array(value, t.name)
        done = False
        for init in out.graph.initializer:
            if init.name == t.name:
                init.CopyFrom(proto)
                done = True
        for node in out.graph.node:
            if node.op_type == "Constant" and node.output and node.output[0] == t.name:
                for attr in node.attribute:
                    if attr.name == "value":
                        attr.t.CopyFrom(proto)
                        done = True
        if not done:
            raise RecipeError(f"prior constant {t.name!r} vanished from the graph")
    return out
