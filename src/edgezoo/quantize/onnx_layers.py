"""The layers TIDL quantizes in an ONNX graph, grouped as TIDL fuses them, and their calibrated ranges.

TIDL fuses a convolution / inner product / eltwise with the activation that follows it into one layer and
quantizes that layer's output; it names layers by their output tensors (the names `*_16bit_names_list` takes).
Layers that only move or select values (MaxPool, Concat, Reshape, Flatten, Transpose, ...) keep their input's
scale in TIDL, so they are not quantization points here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgezoo.bundle.reader import META_ARCH, Bundle, read_bundle
from edgezoo.tidl.meta_arch.prototxt import load_meta_arch

# Ops whose float output TIDL requantizes (after fusing a following activation).
QUANTIZED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "BatchNormalization",
                           "AveragePool", "GlobalAveragePool", "Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid",
                           "Resize"})
ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid"})
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
# TIDL can run these in 16 bits (tidl.md: Conv, BN, non-max Pool, Eltwise).
SIXTEEN_BIT_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "AveragePool",
                             "GlobalAveragePool", "Add", "Sub", "Mul"})


@dataclass(frozen=True)
class Layer:
    """One quantization point: `name` is the output tensor (TIDL's layer name), `weight` the initializer of its
    convolution / inner product when it has one, `ops` the fused node types."""

    name: str
    ops: tuple[str, ...]
    weight: str | None = None
    weight_axis: int = 0  # the output-channel axis of the weight

    @property
    def can_be_16bit(self) -> bool:
        return bool(SIXTEEN_BIT_OPS.intersection(self.ops))


def _float_tensors(model: Any) -> set[str]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    infos = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    return {v.name for v in infos if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}


def _weight_axis(node: Any) -> int:
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if node.op_type == "MatMul":
        return 1
    if node.op_type == "ConvTranspose":
        return 1
    return 0


def backbone_nodes(model: Any, heads: Sequence[str]) -> set[str]:
    """The names of the nodes the `heads` tensors depend on: what TIDL runs in its backbone when a meta-architecture
    (meta_arch.prototxt) takes over from the heads; the ONNX tail after them is not TIDL's to quantize."""
    producer = {out: node for node in model.graph.node for out in node.output}
    seen: set[str] = set()
    stack = [producer[h] for h in heads if h in producer]
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        stack += [producer[i] for i in node.input if i in producer]
    return seen


def meta_arch_heads(bundle: Any) -> list[str]:
    """The head tensors a bundle's meta_arch.prototxt decodes ([] when it has none). `bundle`: a folder, or a
    bundle.reader.Bundle (its prototxt checked against the manifest)."""

    prototxt = (bundle if isinstance(bundle, Bundle) else read_bundle(bundle)).file(META_ARCH)
    if prototxt is None:
        return []
    ssd = load_meta_arch(prototxt).single_ssd(prototxt.name)
    return list(dict.fromkeys([*ssd.box_input, *ssd.class_input]))


def quant_layers(model: Any, within: set[str] | None = None) -> list[Layer]:
    """Every layer TIDL quantizes, in graph order.

    The network input is not among them: TIDL takes the uint8 pixels and folds the mean/scale normalisation into
    its first layer, so the input costs nothing in 8 bits. `within`: only nodes of these names (backbone_nodes)."""
    floats = _float_tensors(model)
    initializers = {i.name for i in model.graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in model.graph.output}
    layers: list[Layer] = []
    fused: dict[str, tuple[tuple[str, ...], str | None, int]] = {}  # activation node output -> what it absorbs
    for node in model.graph.node:
        if node.op_type not in QUANTIZED_OPS or not node.output or node.output[0] not in floats:
            continue
        if within is not None and node.name not in within:
            continue
        out = node.output[0]
        weight = node.input[1] if node.op_type in WEIGHTED_OPS and len(node.input) > 1 \
            and node.input[1] in initializers else None
        absorbed = fused.pop(node.input[0], None) if node.op_type in ACTIVATIONS and node.input else None
        ops = (*absorbed[0], node.op_type) if absorbed else (node.op_type,)
        if absorbed and weight is None:
            weight, axis = absorbed[1], absorbed[2]
        else:
            axis = _weight_axis(node)
        users = consumers.get(out, [])
        if (len(users) == 1 and users[0].op_type in ACTIVATIONS and node.op_type not in ACTIVATIONS
                and out not in graph_outputs):
            fused[users[0].input[0]] = (ops, weight, axis)  # TIDL fuses it with its activation
            continue
        layers.append(Layer(out, ops, weight, axis))
    return layers


class Probe:
    """A model in ONNX Runtime with chosen intermediate tensors exposed as outputs."""

    def __init__(self, model: Any, names: Sequence[str]) -> None:
        import onnx
        import onnxruntime as ort

        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        present = {o.name for o in probe.graph.output}
        for name in names:
            if name not in present:
                probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.names = list(names)
        self.session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.feed = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.names, self.session.run(self.names, {self.feed: batch})))


def tensor_ranges(model: Any, names: Sequence[str], inputs: Sequence[np.ndarray]) -> dict[str, tuple[float, float]]:
    """(min, max) of each named tensor over the calibration inputs, with the float model in ONNX Runtime."""
    probe = Probe(model, names)
    lows = {n: np.inf for n in names}
    highs = {n: -np.inf for n in names}
    for batch in inputs:
        for name, value in probe.run(batch).items():
            lows[name] = min(lows[name], float(np.min(value)))
            highs[name] = max(highs[name], float(np.max(value)))
    return {n: (lows[n], highs[n]) for n in names}
