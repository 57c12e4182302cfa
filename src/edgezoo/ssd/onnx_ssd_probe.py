"""Run an ONNX SSD's post-processing alone, on head values we choose: the behaviour the decoding reader measures.

`TailProbe(model, heads)` rewrites the graph so the two head concatenations (raw box regressions and class logits)
are graph inputs and removes everything no output needs any more (the backbone: a probe costs milliseconds, not a
backbone pass). What remains is the model's own decoding, score conversion, candidate selection, NonMaxSuppression
(also inside If/Loop) and output formatting, run by ONNX Runtime exactly as the original runs it.

Feeds are given as [N, 4] regressions and [N, C] logits in PRIOR order; the probe lays them out as the concat holds
them (SEPARATED [1, N, 4] or [1, N, 1, 4]; INTERLEAVED [1, 4, N]). Other graph inputs still needed (an image whose
Shape the tail reads) get a seeded random value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.graphs import onnx_model

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(uint8)": np.uint8,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float16)": np.float16}


def tail_model(model: Any, given: Mapping[str, Any], outputs: Sequence[str]) -> Any:
    """A copy of `model` (shapes inferred) computing `outputs` from the `given` tensors (name -> ValueInfoProto,
    made graph inputs) and whatever original inputs are still needed."""
    import onnx

    keep, seen = onnx_model.needed_nodes(model, outputs, given)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    nodes = [model.graph.node[k] for k in keep]
    del graph.node[:]
    graph.node.extend(nodes)
    inputs = [i for i in model.graph.input if i.name in seen and i.name not in given]
    del graph.input[:]
    graph.input.extend(list(given.values()) + inputs)
    inits = [i for i in model.graph.initializer if i.name in seen and i.name not in given]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    known = {v.name: v for v in list(model.graph.value_info) + list(model.graph.output)}
    del graph.output[:]
    for name in outputs:
        vi = onnx.ValueInfoProto()
        vi.name = name
        if name in known and known[name].type.tensor_type.elem_type:
            vi.type.tensor_type.elem_type = known[name].type.tensor_type.elem_type
        else:
            raise RecipeError(f"cannot probe {name!r}: its type is unknown", hint="give the input a static shape")
        graph.output.append(vi)
    del graph.value_info[:]
    return out


class TailProbe:
    """The post-processing of an SSD as a function of its head values (see the module docstring)."""

    def __init__(self, model: Any, box_concat: str, class_concat: str, num_priors: int, num_classes: int,
                 interleaved: bool, outputs: Sequence[str] | None = None, seed: int = 0,
                 ranks: tuple[int, int] = (3, 3)) -> None:
        import onnx
        import onnxruntime as ort


        self.n, self.c, self.interleaved = num_priors, num_classes, interleaved
        infos = onnx_model.value_infos(model)
        given = {}
        self.shapes = {}
        for name, rows, rank in ((box_concat, 4, ranks[0]), (class_concat, num_classes, ranks[1])):
            vi = infos.get(name)
            dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim] \
                if vi is not None and vi.type.tensor_type.HasField("shape") else []
            if not dims or any(d is None or d <= 0 for d in dims) or int(np.prod(dims)) != rows * num_priors:
                # shape inference could not follow the heads' reshapes (targets computed from Shape): the
                # concatenation of [1, rows, -1] (INTERLEAVED), [1, -1, rows] or [1, -1, 1, rows] (SEPARATED) heads
                dims = [1, rows, num_priors] if interleaved else [1, num_priors] + [1] * (rank - 3) + [rows]
            elem = vi.type.tensor_type.elem_type if vi is not None and vi.type.tensor_type.elem_type else 1
            self.shapes[name] = tuple(dims)
            given[name] = onnx.helper.make_tensor_value_info(name, elem, dims)
        self.box_concat, self.class_concat = box_concat, class_concat
        self.outputs = list(dict.fromkeys(onnx_model.output_names(model) if outputs is None else outputs))
        probe = tail_model(model, given, self.outputs)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(probe.SerializeToString(), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 -- ORT raises its own exception types
            raise RecipeError(f"the post-processing alone does not run in ONNX Runtime: {str(exc).splitlines()[0]}",
                              hint="the graph's tail must be computable from its head concatenations") from None
        rng = np.random.default_rng(seed)
        self.feed_rest = {}
        for inp in self.session.get_inputs():
            if inp.name in given:
                continue
            if not all(isinstance(d, int) for d in inp.shape):
                raise RecipeError(f"input {inp.name!r} has shape {inp.shape}: give it a static shape first",
                                  hint=f"--inputs {inp.name}:1x3xHxW")
            dtype = _ORT_TYPES.get(inp.type, np.float32)
            self.feed_rest[inp.name] = rng.uniform(0, 1, inp.shape).astype(dtype)

    def _layout(self, name: str, rows: np.ndarray) -> np.ndarray:
        """[N, K] in prior order -> the concat's own layout."""
        shape = self.shapes[name]
        if self.interleaved:
            return np.ascontiguousarray(rows.T).reshape(shape).astype(np.float32)
        return rows.reshape(shape).astype(np.float32)

    def run(self, loc: np.ndarray, logits: np.ndarray, outputs: Sequence[str] | None = None
            ) -> dict[str, np.ndarray]:
        """The tail's outputs for regressions `loc` [N, 4] and `logits` [N, C] (prior order)."""
        feed = {self.box_concat: self._layout(self.box_concat, np.asarray(loc, np.float64)),
                self.class_concat: self._layout(self.class_concat, np.asarray(logits, np.float64)), **self.feed_rest}
        names = list(outputs) if outputs is not None else self.outputs
        return dict(zip(names, self.session.run(names, feed)))


def decode_rows(loc: np.ndarray, priors_graph: np.ndarray, variances: Sequence[float],
                loc_columns: Sequence[int], order: str) -> np.ndarray:
    """The measured decoding: regressions [N, 4] (graph column order) -> corners in the graph's column order."""
    pcx, pcy, pw, ph = priors_graph.T
    dx, dy, dw, dh = (loc[:, j] for j in loc_columns)
    cx, cy = pcx + variances[0] * dx * pw, pcy + variances[1] * dy * ph
    w, h = pw * np.exp(variances[2] * dw), ph * np.exp(variances[3] * dh)
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    return np.stack([x1, y1, x2, y2] if order == "xyxy" else [y1, x1, y2, x2], axis=1)


def encode_rows(boxes_norm: np.ndarray, measured_priors: np.ndarray, variances: Sequence[float],
                loc_columns: Sequence[int]) -> np.ndarray:
    """Regressions (graph column order) that decode to `boxes_norm` [K, 4] (x1, y1, x2, y2 normalised) from the
    first K priors `measured_priors` [K, 4] (cx, cy, w, h normalised): how probes place boxes where they want."""
    pcx, pcy, pw, ph = measured_priors.T
    x1, y1, x2, y2 = boxes_norm.T
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    loc = np.zeros((len(boxes_norm), 4))
    values = ((cx - pcx) / (variances[0] * pw), (cy - pcy) / (variances[1] * ph), np.log(w / pw) / variances[2],
              np.log(h / ph) / variances[3])
    for j, v in zip(loc_columns, values):
        loc[:, j] = v
    return loc
