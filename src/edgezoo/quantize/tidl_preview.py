"""A preview of TIDL's 8-bit import on a float ONNX model: fake quantization where TIDL quantizes.

What it reproduces (TIDL docs, tidl_fsg_quantization): every layer output TIDL requantizes (convolution /
inner product / eltwise / BN / average pool fused with the activation that follows) gets a power-of-2 scale from
the calibration frames' min/max ("simple calibration"; feature maps are power-of-2 whatever the scale type),
unsigned when the range is non-negative (after ReLU), signed otherwise; weights are quantized per the scale type
(0: per-tensor symmetric, 1: per-tensor power-of-2, 4: per-channel asymmetric); layers named in the 16-bit list use
16 bits for both.
What it does not: TIDL's histogram-based range clipping and its iterative bias calibration (accuracy_level 1),
bias quantization (biases stay float), requantization of Concat inputs to one scale, and TIDL's fixed-point
arithmetic inside a layer (accumulation is float here). The network input is not quantized: TIDL takes the uint8
pixels and folds the normalisation into its first layer. It is a preview, not TIDL.

The quantize step is x -> min(max(floor(x / s + 0.5), lo), hi) * s in float ops that exist in every opset (the
published MobileNet ONNX is opset 8: no Round, no Clip with tensor bounds), inserted after the layer's output
tensor, which keeps its name; the same graph serves 8 and 16 bits. Rounding is half-up (TIDL rounds half away from
zero; the two differ only on exact ties of negative values).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgezoo.quantize.onnx_layers import Layer
from edgezoo.quantize.schemes import ScaleType

REPRODUCED = ("power-of-2 feature-map scales from the calibration frames (min/max)",
              "parameter scales per quantization_scale_type (0, 1, 4)",
              "conv/eltwise + activation fusion before requantization",
              "16-bit layers by name (output_feature_16bit_names_list / params_16bit_names_list)")
NOT_REPRODUCED = ("histogram range clipping and bias calibration (accuracy_level 1)", "bias quantization",
                  "Concat input requantization", "fixed-point arithmetic inside layers")


def power_of_2_scale(absmax: float, qmax: int) -> float:
    """The smallest power of two s with absmax / s <= qmax (so the range is never clipped)."""
    if absmax <= 0.0 or not math.isfinite(absmax):
        return 1.0
    return float(2.0 ** math.ceil(math.log2(absmax / qmax)))


def feature_range(lo: float, hi: float, bits: int) -> tuple[float, int, int]:
    """(scale, qmin, qmax) of a feature map: unsigned when it is non-negative, as TIDL does after ReLU."""
    if lo >= 0.0:
        qmin, qmax = 0, 2**bits - 1
        return power_of_2_scale(hi, qmax), qmin, qmax
    qmax = 2 ** (bits - 1) - 1
    return power_of_2_scale(max(abs(lo), abs(hi)), qmax), -qmax - 1, qmax


def fake_quant_weight(w: np.ndarray, axis: int, scale_type: ScaleType, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(quantized-dequantized weights, scales: one per tensor or one per output channel)."""
    qmax = 2 ** (bits - 1) - 1
    if scale_type is ScaleType.ASYMMETRIC_PER_CHANNEL:
        moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1).astype(np.float64)
        lo = np.minimum(moved.min(axis=1), 0.0)
        hi = np.maximum(moved.max(axis=1), 0.0)
        scales = np.where(hi > lo, (hi - lo) / (2**bits - 1), 1.0)
        zero = np.round(-lo / scales) - 2 ** (bits - 1)
        q = np.clip(np.round(moved / scales[:, None]) + zero[:, None], -qmax - 1, qmax)
        back = ((q - zero[:, None]) * scales[:, None]).reshape(np.moveaxis(w, axis, 0).shape)
        return np.moveaxis(back, 0, axis).astype(w.dtype), scales
    absmax = float(np.max(np.abs(w)))
    if scale_type is ScaleType.POWER_OF_2:
        scale = power_of_2_scale(absmax, qmax)
    else:
        scale = absmax / qmax if absmax > 0 else 1.0
    return (np.clip(np.round(w / scale), -qmax - 1, qmax) * scale).astype(w.dtype), np.array([scale])


@dataclass
class PreviewModel:
    model: Any  # onnx.ModelProto
    feature_scales: dict[str, float] = field(default_factory=dict)
    weight_scales: dict[str, np.ndarray] = field(default_factory=dict)


def build_preview(model: Any, layers: list[Layer], ranges: Mapping[str, tuple[float, float]],
                  scale_type: ScaleType, *, keep_float: Collection[str] = (),
                  sixteen_bit: Collection[str] = ()) -> PreviewModel:
    """The fake-quantized copy of `model`; layers in `keep_float` stay float, those in `sixteen_bit` use 16 bits."""
    import onnx
    from onnx import helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    preview = PreviewModel(out)
    inits = {i.name: i for i in out.graph.initializer}
    chains: dict[str, list[Any]] = {}  # tensor -> the nodes that quantize it (inserted after its producer)
    for layer in layers:
        if layer.name in keep_float:
            continue
        bits = 16 if layer.name in sixteen_bit else 8
        if layer.weight is not None and layer.weight in inits:
            w = numpy_helper.to_array(inits[layer.weight])
            fq, scales = fake_quant_weight(w, layer.weight_axis, scale_type, bits)
            inits[layer.weight].CopyFrom(numpy_helper.from_array(fq, layer.weight))
            preview.weight_scales[layer.name] = scales
        lo, hi = ranges[layer.name]
        scale, qmin, qmax = feature_range(lo, hi, bits)
        preview.feature_scales[layer.name] = scale
        # The layer's output keeps its name: consumers and graph outputs read the quantized value.
        source, target = f"{layer.name}__float", layer.name
        tag = f"{layer.name}__fq"
        consts = [numpy_helper.from_array(np.array(v, np.float32), f"{tag}_{k}")
                  for k, v in (("scale", scale), ("half", 0.5), ("qmin", qmin), ("qmax", qmax))]
        out.graph.initializer.extend(consts)
        chains[layer.name] = [
            helper.make_node("Div", [source, f"{tag}_scale"], [f"{tag}_div"], name=f"{tag}_div"),
            helper.make_node("Add", [f"{tag}_div", f"{tag}_half"], [f"{tag}_add"], name=f"{tag}_add"),
            helper.make_node("Floor", [f"{tag}_add"], [f"{tag}_floor"], name=f"{tag}_floor"),
            helper.make_node("Max", [f"{tag}_floor", f"{tag}_qmin"], [f"{tag}_max"], name=f"{tag}_max"),
            helper.make_node("Min", [f"{tag}_max", f"{tag}_qmax"], [f"{tag}_min"], name=f"{tag}_min"),
            helper.make_node("Mul", [f"{tag}_min", f"{tag}_scale"], [target], name=f"{tag}_mul")]
    nodes = []
    for node in out.graph.node:
        produced = [name for name in node.output if name in chains]
        for i, name in enumerate(node.output):
            if name in produced:
                node.output[i] = f"{name}__float"
        nodes.append(node)
        nodes += [n for name in produced for n in chains[name]]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return preview
