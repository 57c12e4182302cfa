"""Refill a stripped TF GraphDef: find its weight layers, calibrate them with TensorFlow, fill the Consts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tests.structures.calibrate import HeadSpec, Layer, Role, Scoring, calibrate
from tests.structures.inputs import InputSpec

_KERNEL_OPS = {"Conv2D", "DepthwiseConv2dNative", "MatMul"}
_BATCH_NORMS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}
_CONTROL_FLOW = {"Enter", "Exit", "Merge", "Switch", "NextIteration", "LoopCond"}


def _node(ref: str) -> str:
    return ref.lstrip("^").split(":")[0]


def _tensor(ref: str) -> str:
    return ref if ":" in ref else ref + ":0"


def refill_graph_def(gd, stripped: dict[str, list], heads: dict, scoring: Scoring, input_spec: InputSpec,
                     images: Sequence[np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Fill every stripped Const of `gd` in place; returns the values by Const name."""
    layers, upstream = _layers(gd, set(stripped), heads)
    missing = set(stripped) - {n for layer in layers for n in _slots(layer)}
    if missing:
        raise ValueError(f"stripped constants no layer accounts for: {sorted(missing)[:5]}")
    shapes = {name: tuple(shape) for name, shape in stripped.items()}
    runner = _Runner(gd, stripped, input_spec, images, upstream)
    values = calibrate(layers, shapes, runner.run, seed, scoring)
    fill_consts(gd, values)
    return values


def fill_consts(gd, values: dict[str, np.ndarray]) -> None:
    import tensorflow as tf

    for node in gd.node:
        if node.op == "Const" and node.name in values:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(values[node.name].astype(np.float32)))


def _slots(layer: Layer) -> list[str]:
    out = [layer.kernel] + ([layer.bias] if layer.bias else [])
    for bn in layer.batch_norms:
        out += list(bn)
    return out


def _layers(gd, stripped: set[str], heads: dict) -> tuple[list[Layer], dict[str, frozenset[str]]]:
    nodes = {n.name: n for n in gd.node}
    consumers: dict[str, list] = {}
    for n in gd.node:
        for ref in n.input:
            if not ref.startswith("^"):
                consumers.setdefault(_tensor(ref), []).append(n)

    def const_of(ref: str) -> str | None:
        name = _node(ref)
        while name in nodes and nodes[name].op == "Identity":
            name = _node(nodes[name].input[0])
        return name if name in stripped else None

    head_role = {name: Role.CLASS for name in heads.get("class", [])}
    head_role.update({name: Role.BOX for name in heads.get("box", [])})
    head_spec = HeadSpec(columns=heads["columns"], class_major=heads.get("class_major", False)) \
        if heads.get("class") else None
    layers: dict[str, Layer] = {}
    ops_of: dict[str, list[str]] = {}
    for n in gd.node:
        if n.op not in _KERNEL_OPS or len(n.input) < 2:
            continue
        kernel = const_of(n.input[1])
        if kernel is None:
            continue
        ops_of.setdefault(kernel, []).append(n.name)

        def skip_identity(ref: str) -> str:
            users = consumers.get(ref, [])
            while len(users) == 1 and users[0].op == "Identity":
                ref = users[0].name + ":0"
                users = consumers.get(ref, [])
            return ref

        after = skip_identity(n.name + ":0")
        bias = None
        users = consumers.get(after, [])
        if len(users) == 1 and users[0].op == "BiasAdd" and const_of(users[0].input[1]):
            bias = const_of(users[0].input[1])
            after = skip_identity(users[0].name + ":0")
        users = consumers.get(after, [])
        bn = None
        if len(users) == 1 and users[0].op in _BATCH_NORMS:
            params = tuple(const_of(r) for r in users[0].input[1:5])
            if all(params):
                bn = params
        layer = layers.get(kernel)
        if layer is None:
            layer = _new_layer(n, kernel, nodes, head_role, head_spec)
            layers[kernel] = layer
        else:
            layer.measure.append(n.name + ":0")
        if bias is not None:
            if layer.bias not in (None, bias):
                raise ValueError(f"{kernel}: several biases")
            layer.bias = bias
        if bn is not None:
            layer.batch_norms.append(bn)
    upstream = _upstream(gd, ops_of, consumers)
    for kernel, layer in layers.items():
        ups = set()
        for op in ops_of[kernel]:
            for ref in nodes[op].input:
                ups |= upstream.get(_tensor(ref), frozenset())
        layer.depends_on = ups - {kernel}
    return list(layers.values()), upstream


def _new_layer(n, kernel: str, nodes: dict, head_role: dict, head_spec: HeadSpec | None) -> Layer:
    shape = [d.size for d in nodes[kernel].attr["value"].tensor.tensor_shape.dim]
    nchw = n.attr["data_format"].s == b"NCHW" if "data_format" in n.attr else False
    channel_axis = 1 if nchw else -1
    view = unview = None
    if n.op == "Conv2D":
        out_axis, fan_in = 3, shape[0] * shape[1] * shape[2]
    elif n.op == "DepthwiseConv2dNative":
        out_axis, fan_in = 2, shape[0] * shape[1]
        h, w, i, m = shape
        view = lambda k: k.reshape(h, w, i * m)  # noqa: E731 -- output channel = input channel * m + index
        unview = lambda k: k.reshape(h, w, i, m)  # noqa: E731
    else:
        trans_b = n.attr["transpose_b"].b if "transpose_b" in n.attr else False
        out_axis, fan_in = (0, shape[1]) if trans_b else (1, shape[0])
    role = head_role.get(kernel, Role.HIDDEN)
    return Layer(kernel=kernel, measure=[n.name + ":0"], channel_axis=channel_axis, kernel_out_axis=out_axis,
                 fan_in=fan_in, role=role, head=head_spec if role is Role.CLASS else None, kernel_view=view,
                 kernel_unview=unview)


def _upstream(gd, ops_of: dict[str, list[str]], consumers: dict[str, list]) -> dict[str, frozenset[str]]:
    """For every tensor downstream of a weight layer, the kernels it depends on (forward from each layer)."""
    reach: dict[str, set[str]] = {}
    outputs: dict[str, list[str]] = {}
    for ref in consumers:
        outputs.setdefault(_node(ref), []).append(ref)
    for kernel, ops in ops_of.items():
        stack = list(ops)
        seen: set[str] = set()
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            for ref in outputs.get(name, []):
                reach.setdefault(ref, set()).add(kernel)
                stack.extend(c.name for c in consumers[ref])
    return {ref: frozenset(k) for ref, k in reach.items()}


class _Runner:
    """TensorFlow on the graph with the stripped Consts as Placeholders, one image at a time. Tensors whose
    weights are final are kept per image and fed instead of recomputed (TF prunes what they make unnecessary)."""

    def __init__(self, gd, stripped: dict[str, list], input_spec: InputSpec, images: Sequence[np.ndarray],
                 upstream: dict[str, frozenset[str]]):
        import tensorflow as tf

        work = tf.compat.v1.GraphDef()
        work.CopyFrom(gd)
        for node in work.node:
            if node.name in stripped:
                shape = stripped[node.name]
                node.op = "Placeholder"
                del node.attr["value"]
                node.attr["shape"].shape.CopyFrom(tf.TensorShape(shape).as_proto())
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(work, name="")
        self.session = tf.compat.v1.Session(graph=self.graph)
        self.nodes = {n.name: n for n in work.node}
        self.stripped = stripped
        self.upstream = upstream
        self.consumers: dict[str, list[str]] = {}
        for n in work.node:
            for ref in n.input:
                if not ref.startswith("^"):
                    self.consumers.setdefault(_tensor(ref), []).append(n.name)
        name = input_spec.name + ":0"
        self.cache = [{name: input_spec.feed(image)} for image in images]

    def run(self, fetch: Sequence[str], values: dict[str, np.ndarray], provisional: set[str]) -> list[np.ndarray]:
        needed = self._needed(fetch)
        boundary = self._boundary(needed, provisional, fetch)
        weights = {self.graph.get_tensor_by_name(k + ":0"): v for k, v in values.items()}
        fetches = [self.graph.get_tensor_by_name(t) for t in [*fetch, *boundary]]
        results = []
        for cache in self.cache:
            feed = dict(weights)
            feed.update({self.graph.get_tensor_by_name(k): v for k, v in cache.items()})
            outs = self.session.run(fetches, feed)
            results.append(outs[:len(fetch)])
            cache.update(zip(boundary, outs[len(fetch):]))
        return [np.concatenate([r[i] for r in results], axis=0) for i in range(len(fetch))]

    def _needed(self, fetch: Sequence[str]) -> set[str]:
        cached = self.cache[0]
        need: set[str] = set()
        stack = [_node(t) for t in fetch]
        while stack:
            name = stack.pop()
            if name in need or name in self.stripped:
                continue
            need.add(name)
            for ref in self.nodes[name].input:
                if not ref.startswith("^") and _tensor(ref) in cached:
                    continue
                stack.append(_node(ref))
        return need

    def _boundary(self, needed: set[str], provisional: set[str], fetch: Sequence[str]) -> list[str]:
        out = []
        for name in needed:
            node = self.nodes[name]
            if node.op in _CONTROL_FLOW or node.op in ("Const", "Placeholder"):
                continue
            for idx in range(8):
                ref = f"{name}:{idx}"
                users = self.consumers.get(ref)
                if users is None:
                    if idx > 0:
                        break
                    continue
                ups = self.upstream.get(ref)
                if not ups or ups & provisional or ref in fetch or ref in self.cache[0]:
                    continue
                if any(u not in needed for u in users):
                    tensor = self.graph.get_tensor_by_name(ref)
                    if self.graph.is_feedable(tensor) and self.graph.is_fetchable(tensor.op):
                        out.append(ref)
        return sorted(out)
