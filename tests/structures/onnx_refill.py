"""Refill a stripped ONNX structure: find its weight layers, calibrate them with ONNX Runtime, write the model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tests.structures.calibrate import HeadSpec, Layer, Role, Scoring, calibrate
from tests.structures.inputs import InputSpec

_KERNEL_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}


def refill_onnx(model, stripped: dict[str, list], heads: dict, scoring: Scoring, input_spec: InputSpec,
                images: Sequence[np.ndarray], seed: int):
    """The model (onnx.ModelProto, stripped initializers empty) with every stripped initializer filled."""
    from onnx import numpy_helper

    shapes = {name: tuple(shape) for name, shape in stripped.items()}
    layers, upstream = _layers(model, set(stripped), heads)
    missing = set(stripped) - {n for layer in layers for n in _slots(layer)}
    if missing:
        raise ValueError(f"stripped initializers no layer accounts for: {sorted(missing)[:5]}")
    runner = _Runner(model, stripped, input_spec, images, upstream)
    values = calibrate(layers, shapes, runner.run, seed, scoring)
    for init in model.graph.initializer:
        if init.name in stripped:
            init.CopyFrom(numpy_helper.from_array(values[init.name].astype(np.float32), init.name))
    return model


def _slots(layer: Layer) -> list[str]:
    out = [layer.kernel] + ([layer.bias] if layer.bias else [])
    for bn in layer.batch_norms:
        out += list(bn)
    return out


def _layers(model, stripped: set[str], heads: dict) -> tuple[list[Layer], dict[str, frozenset[str]]]:
    """The weight layers in graph order, and for every tensor the kernels upstream of it."""
    graph = model.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    init_shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    head_role = {name: Role.CLASS for name in heads.get("class", [])}
    head_role.update({name: Role.BOX for name in heads.get("box", [])})
    head_spec = HeadSpec(columns=heads["columns"], class_major=heads.get("class_major", False)) \
        if heads.get("class") else None

    upstream: dict[str, frozenset[str]] = {}  # tensor -> kernels of the layers it depends on
    layers: dict[str, Layer] = {}
    for node in graph.node:
        ups: set[str] = set()
        for name in node.input:
            ups |= upstream.get(name, frozenset())
        kernel = node.input[1] if node.op_type in _KERNEL_OPS and len(node.input) > 1 else None
        if kernel in stripped:
            layer = layers.get(kernel)
            if layer is None:
                layer = _new_layer(node, kernel, init_shapes[kernel], stripped, consumers, head_role, head_spec)
                layers[kernel] = layer
            else:  # a kernel shared by several ops: measured together
                layer.measure.append(node.output[0])
            layer.depends_on |= ups
            mine = ups | {kernel}
        else:
            mine = ups
        for name in node.output:
            upstream[name] = frozenset(mine)
    return list(layers.values()), upstream


def _new_layer(node, kernel: str, shape: tuple[int, ...], stripped: set[str], consumers: dict,
               head_role: dict, head_spec: HeadSpec | None) -> Layer:
    op = node.op_type
    attrs = {a.name: a for a in node.attribute}
    if op in ("Conv", "ConvTranspose"):
        out_axis, fan_in, channel_axis = (0, int(np.prod(shape[1:])), 1) if op == "Conv" else \
            (1, int(shape[0] * np.prod(shape[2:])), 1)
    elif op == "Gemm":
        trans_b = attrs["transB"].i if "transB" in attrs else 0
        out_axis, fan_in, channel_axis = (0, shape[1], -1) if trans_b else (1, shape[0], -1)
    else:  # MatMul
        out_axis, fan_in, channel_axis = 1, shape[0], -1
    bias = node.input[2] if op in ("Conv", "ConvTranspose", "Gemm") and len(node.input) > 2 else None
    after = node.output[0]
    if bias is None and op == "MatMul":
        users = consumers.get(after, [])
        if len(users) == 1 and users[0].op_type == "Add":
            other = [n for n in users[0].input if n != after]
            if other and other[0] in stripped:
                bias, after = other[0], users[0].output[0]
    if bias is not None and bias not in stripped:
        raise ValueError(f"{node.name}: kernel {kernel} stripped but not its bias {bias}")
    batch_norms = []
    users = consumers.get(after, [])
    if len(users) == 1 and users[0].op_type == "BatchNormalization":
        bn = tuple(users[0].input[1:5])
        if all(n in stripped for n in bn):
            batch_norms.append(bn)
    role = head_role.get(kernel, Role.HIDDEN)
    return Layer(kernel=kernel, measure=[node.output[0]], channel_axis=channel_axis, kernel_out_axis=out_axis,
                 fan_in=fan_in, bias=bias, batch_norms=batch_norms, role=role,
                 head=head_spec if role is Role.CLASS else None)


class _Runner:
    """ONNX Runtime on the parts of the graph a wave needs, one image at a time.

    Tensors that no longer change (every weight upstream final) are kept per image and fed to the next wave's
    sub-model instead of being recomputed: calibration costs about two forward passes, not one per layer."""

    def __init__(self, model, stripped: dict[str, list], input_spec: InputSpec, images: Sequence[np.ndarray],
                 upstream: dict[str, frozenset[str]]):
        self.model = model
        self.stripped = stripped
        self.upstream = upstream
        self.producer = {out: node for node in model.graph.node for out in node.output}
        self.kept = {i.name: i for i in model.graph.initializer if i.name not in stripped}
        self.input_name = input_spec.name
        self.cache: list[dict[str, np.ndarray]] = [{self.input_name: input_spec.feed(image)} for image in images]
        self.consumers: dict[str, list[int]] = {}
        for i, node in enumerate(model.graph.node):
            for name in _node_inputs(node):
                self.consumers.setdefault(name, []).append(i)

    def run(self, fetch: Sequence[str], values: dict[str, np.ndarray], provisional: set[str]) -> list[np.ndarray]:
        import onnx
        import onnxruntime as ort

        nodes = self._needed(fetch)
        node_set = set(id(n) for n in nodes)
        produced = {out for n in nodes for out in n.output}
        free = {name for n in nodes for name in _node_inputs(n) if name and name not in produced}
        boundary = []
        for n in nodes:
            for out in n.output:
                users = self.consumers.get(out, [])
                outside = any(id(self.model.graph.node[u]) not in node_set for u in users)
                final = not (self.upstream.get(out, frozenset()) & provisional)
                if outside and final and out not in fetch:
                    boundary.append(out)
        graph = onnx.helper.make_graph(
            nodes, "wave",
            [self._value_info(name, values) for name in sorted(free) if name not in self.kept],
            [onnx.helper.make_empty_tensor_value_info(name) for name in [*fetch, *boundary]],
            [self.kept[name] for name in sorted(free) if name in self.kept])
        sub = onnx.helper.make_model(graph, opset_imports=self.model.opset_import, ir_version=self.model.ir_version)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(sub.SerializeToString(), options, providers=["CPUExecutionProvider"])
        wanted = [name for name in sorted(free) if name not in self.kept]
        results = []
        for cache in self.cache:
            feeds = {name: cache[name] if name in cache else values[name] for name in wanted}
            outs = session.run([*fetch, *boundary], feeds)
            results.append(outs[:len(fetch)])
            cache.update(zip(boundary, outs[len(fetch):]))
        return [np.concatenate([r[i] for r in results], axis=0) for i in range(len(fetch))]

    def _value_info(self, name: str, values: dict[str, np.ndarray]):
        import onnx

        array = self.cache[0].get(name)
        if array is None:
            array = values[name]
        return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(array.dtype),
                                                  None)

    def _needed(self, fetch: Sequence[str]) -> list:
        """Nodes computing `fetch` from cached tensors, inputs and initializers, in graph order."""
        need: set[int] = set()
        stack = list(fetch)
        seen: set[str] = set()
        positions = {id(n): i for i, n in enumerate(self.model.graph.node)}
        while stack:
            name = stack.pop()
            if name in seen or name in self.cache[0] or name in self.kept or name in self.stripped:
                continue
            seen.add(name)
            node = self.producer.get(name)
            if node is None:
                continue
            need.add(positions[id(node)])
            stack.extend(n for n in _node_inputs(node) if n)
        return [self.model.graph.node[i] for i in sorted(need)]


def _node_inputs(node) -> list[str]:
    """A node's inputs, and the outer-scope names its subgraphs read."""
    names = list(node.input)
    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            inner = {o for n in g.node for o in n.output} | {i.name for i in g.input} | \
                {i.name for i in g.initializer}
            names += [n for sub in g.node for n in _node_inputs(sub) if n not in inner]
    return names


def load_stripped(path: Path):
    import onnx

    return onnx.load_model_from_string(path.read_bytes())
