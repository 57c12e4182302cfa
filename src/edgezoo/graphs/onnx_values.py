"""What a small integer expression in an ONNX graph can be worth, read from the graph without running it.

Exporters write limits as expressions, not constants: PyTorch's `k = min(200, n); scores.topk(k)` becomes
`TopK(k = Reshape(Gather(Reshape(Min(200, Cast(Gather(Shape(x), 0))), [1]), 0), [1]))`. Reading "the first constant
found" there gives the Reshape's shape constant 1. `upper_bound` evaluates such an expression instead, by value:
constants are themselves, a Shape is the tensor's static dims (a dimension only known at run time, such as the
number of boxes NonMaxSuppression kept, is unbounded: inf), and Min/Max/ReduceMin/ReduceMax/Add/Mul/Gather/Concat/
Cast/Reshape/Unsqueeze/Squeeze/Slice/Identity compute on those. Only the data input of Reshape/Unsqueeze/Squeeze is read, never
the shape or axes. An op outside that set makes the value unknown (None): callers refuse rather than guess.

Works across If/Loop subgraphs (tensor names are looked up in every graph of the model).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from edgezoo.graphs import onnx_model

INT64_MAX = np.iinfo(np.int64).max
_DATA_ONLY = {"Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "CastLike"}


def all_graphs(graph: Any) -> Iterator[Any]:
    """`graph` and every subgraph in it (If branches, Loop/Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in list(attr.graphs) + ([attr.g] if attr.HasField("g") else []):
                yield from all_graphs(sub)


def all_nodes(model: Any) -> Iterator[Any]:
    for graph in all_graphs(model.graph):
        yield from graph.node


class GraphIndex:
    """Producers, consumers, constants and static shapes over a model and its subgraphs."""

    def __init__(self, model: Any) -> None:

        self.model = model
        self.producers: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = {}
        self.inits: dict[str, Any] = {}
        self.owner: dict[int, Any] = {}  # id(node) -> the node holding the subgraph it lives in (None: main graph)
        self._index(model.graph, None)
        self.shapes: dict[str, tuple[Any, ...]] = {}
        for name, vi in onnx_model.value_infos(model).items():
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                self.shapes[name] = onnx_model.info(vi).shape

    def _index(self, graph: Any, owner: Any) -> None:
        for init in graph.initializer:
            self.inits[init.name] = init
        for node in graph.node:
            self.owner[id(node)] = owner
            for name in node.output:
                if name:
                    self.producers[name] = node
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
            for attr in node.attribute:
                for sub in list(attr.graphs) + ([attr.g] if attr.HasField("g") else []):
                    self._index(sub, node)
                    for inner in _outer_names(sub):
                        self.consumers.setdefault(inner, []).append(node)  # the If/Loop reads it too

    def constant(self, tensor: str) -> np.ndarray | None:
        """Value of an initializer or a Constant node's output (None otherwise)."""
        from onnx import numpy_helper

        if tensor in self.inits:
            return numpy_helper.to_array(self.inits[tensor])
        node = self.producers.get(tensor)
        if node is None or node.op_type != "Constant":
            return None
        for attr in node.attribute:
            if attr.name == "value":
                return numpy_helper.to_array(attr.t)
            if attr.name in ("value_int", "value_float"):
                return np.asarray(attr.i if attr.name == "value_int" else attr.f)
            if attr.name in ("value_ints", "value_floats"):
                return np.asarray(list(attr.ints) if attr.name == "value_ints" else list(attr.floats))
        return None

    def downstream(self, tensors: list[str]) -> list[Any]:
        """Nodes reachable from `tensors` (through subgraph boundaries: an If/Loop's outputs continue the walk)."""
        seen: set[int] = set()
        order: list[Any] = []
        queue = list(tensors)
        while queue:
            for node in self.consumers.get(queue.pop(0), []):
                if id(node) in seen:
                    continue
                seen.add(id(node))
                order.append(node)
                queue.extend(o for o in node.output if o)
                owner = self.owner.get(id(node))
                # a node inside a subgraph that feeds the subgraph's outputs: the owner's outputs follow
                if owner is not None and id(owner) not in seen and _feeds_outputs(owner, node):
                    queue.extend(o for o in owner.output if o)
        return order


def _outer_names(graph: Any) -> set[str]:
    """Names a subgraph reads from the enclosing scope (not produced, initialised or input inside it)."""
    inner = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    read: set[str] = set()
    for node in graph.node:
        inner.update(o for o in node.output if o)
        read.update(i for i in node.input if i)
        for attr in node.attribute:
            for sub in list(attr.graphs) + ([attr.g] if attr.HasField("g") else []):
                read.update(_outer_names(sub))
    return read - inner


def _feeds_outputs(owner: Any, node: Any) -> bool:
    outputs = {o.name for attr in owner.attribute for sub in list(attr.graphs) + ([attr.g] if attr.HasField("g")
                                                                                   else []) for o in sub.output}
    return any(o in outputs for o in node.output)


def upper_bound(g: GraphIndex, tensor: str, depth: int = 0) -> np.ndarray | None:
    """Elementwise value of an integer tensor as far as the graph fixes it (inf: set at run time), None when an op
    on the way is not understood. See the module docstring."""
    if depth > 64:
        return None
    value = g.constant(tensor)
    if value is not None:
        return np.asarray(value, dtype=np.float64).reshape(-1)
    node = g.producers.get(tensor)
    if node is None:
        return None
    op = node.op_type

    def arg(i: int) -> np.ndarray | None:
        return upper_bound(g, node.input[i], depth + 1) if i < len(node.input) and node.input[i] else None

    if op == "Shape":
        shape = g.shapes.get(node.input[0])
        if shape is None:
            # shape inference left it unknown: only a run-time value (NonMaxSuppression's [n, 3] when it writes it)
            src = g.producers.get(node.input[0])
            shape = (None, 3) if src is not None and src.op_type == "NonMaxSuppression" else (None,) * 8
        dims = [float(d) if isinstance(d, int) and d >= 0 else np.inf for d in shape]
        start = _attr(node, "start", 0)
        end = _attr(node, "end", len(dims))
        return np.asarray(dims[start:end], dtype=np.float64)
    if op == "Size":
        shape = g.shapes.get(node.input[0])
        if shape is None:
            return None
        return np.asarray([float(np.prod([d if isinstance(d, int) else np.inf for d in shape]))])
    if op in _DATA_ONLY:
        return arg(0)
    if op in ("Min", "Max", "Add", "Mul", "Sub", "Div"):
        parts = [arg(i) for i in range(len(node.input))]
        if any(p is None for p in parts):
            return None
        try:
            out = parts[0]
            for p in parts[1:]:
                out = _combine(op, out, p)  # type: ignore[arg-type]
        except ValueError:
            return None
        return out
    if op in ("ReduceMin", "ReduceMax"):
        data = arg(0)
        shape = g.shapes.get(node.input[0])
        if data is None or not data.size or (shape is not None and len(shape) > 1):
            return None  # a 1-D vector reduced to its extreme: torch.min(tensor([k, n]))
        return np.asarray([data.min() if op == "ReduceMin" else data.max()])
    if op == "Concat":
        parts = [arg(i) for i in range(len(node.input))]
        return None if any(p is None for p in parts) else np.concatenate(parts)  # type: ignore[arg-type]
    if op == "Gather" and _attr(node, "axis", 0) == 0:
        data, idx = arg(0), g.constant(node.input[1])
        if data is None or idx is None:
            return None
        try:
            return data[np.asarray(idx, dtype=np.int64).reshape(-1)]
        except IndexError:
            return None
    if op == "Slice":
        data = arg(0)
        starts, ends = g.constant(node.input[1]), g.constant(node.input[2])
        if data is None or starts is None or ends is None or len(starts.reshape(-1)) != 1:
            return None
        return data[int(starts.reshape(-1)[0]):int(min(ends.reshape(-1)[0], INT64_MAX // 2))]
    return None


def _combine(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if op == "Min":
            return np.minimum(a, b)
        if op == "Max":
            return np.maximum(a, b)
        if op == "Add":
            return a + b
        if op == "Mul":
            return a * b
        if op == "Sub":
            if np.isinf(b).any():  # a bound minus an unbounded value bounds nothing
                raise ValueError("unbounded subtrahend")
            return a - b
        if np.isinf(b).any() or (b == 0).any():
            raise ValueError("unbounded or zero divisor")
        return np.floor(a / b)


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def scalar_bound(g: GraphIndex, tensor: str) -> float | None:
    """The one value of a 1-element integer expression (inf: run-time only), None when not understood."""
    value = upper_bound(g, tensor)
    if value is None or value.size != 1:
        return None
    return float(value[0])
