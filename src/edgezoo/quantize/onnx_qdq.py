"""`onnx-qdq`: ONNX Runtime static quantization in QDQ format, as TIDL imports pre-quantized ONNX models.

Weights int8 symmetric per output channel, activations int8 per tensor (TIDL quantization_scale_type 4
conventions). With power_of_2 every scale is then rounded UP to a power of two (type 1: TIDL's power-of-2 scheme;
up, so that no calibrated range is clipped): activations are calibrated symmetric (zero point 0), weights are
re-quantized to their new scale, and each bias to input scale x weight scale, the product the integer kernels assume.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.quantize.onnx_layers import backbone_nodes

from edgezoo.quantize.schemes import SchemeError


MIN_OPSET = 13


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


@contextlib.contextmanager
def _quiet_ort() -> Iterator[None]:
    """quantize_static logs advice on the root logger and ONNX Runtime a line per unused initializer."""
    import onnxruntime as ort

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    ort.set_default_logger_severity(3)
    try:
        yield
    finally:
        root.setLevel(level)


class _Frames:
    """ONNX Runtime's CalibrationDataReader protocol over preprocessed frames."""

    def __init__(self, feed: str, inputs: Sequence[np.ndarray]) -> None:
        self._items = iter([{feed: x} for x in inputs])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize_onnx_qdq(src: Path, dest: Path, inputs: Sequence[np.ndarray], *, power_of_2: bool = False,
                      heads: Sequence[str] = ()) -> None:
    """`heads`: quantize only what computes these tensors (an SSD's backbone and heads; TIDL's meta-architecture
    decodes the rest in float)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(src))
    feed = next(i.name for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer})
    nodes = None
    if heads:
        nodes = sorted(backbone_nodes(model, heads))
    if _opset(model) < MIN_OPSET:
        # Per-channel DequantizeLinear (its axis attribute) needs opset 13; older graphs are converted first.
        from onnx import version_converter

        src = Path(dest).with_name(Path(dest).stem + ".opset13.onnx")
        onnx.save(version_converter.convert_version(model, MIN_OPSET), str(src))
    try:
        with _quiet_ort():
            quantize_static(str(src), str(dest), _Frames(feed, inputs), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            nodes_to_quantize=nodes, calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"WeightSymmetric": True, "ActivationSymmetric": power_of_2})
    except Exception as exc:  # ORT's quantizer raises bare exceptions (unsupported ops, shapes, opsets)

        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SchemeError(f"{src}: ONNX Runtime's static quantization failed: {first}",
                          hint="try --scheme tidl-preview, which only inserts fake quantization") from None
    if power_of_2:
        quantized = onnx.load(str(dest))
        round_scales_to_power_of_2(quantized)
        onnx.save(quantized, str(dest))


def _pow2_up(scales: np.ndarray) -> np.ndarray:
    return np.array([2.0 ** math.ceil(math.log2(s)) if s > 0 else 1.0 for s in scales.reshape(-1)],
                    np.float32).reshape(scales.shape)


def round_scales_to_power_of_2(model: Any) -> None:
    """Every Q/DQ scale of a QDQ model -> the next power of two, re-quantizing constant weights and biases."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}

    def array(name: str) -> np.ndarray:
        return numpy_helper.to_array(inits[name])

    def store(name: str, value: np.ndarray) -> None:
        inits[name].CopyFrom(numpy_helper.from_array(value, name))

    old_scale: dict[str, np.ndarray] = {}
    # Activations: the scale shared by a QuantizeLinear of a computed tensor and its DequantizeLinear.
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits and node.input[1] not in old_scale:
            old_scale[node.input[1]] = array(node.input[1])
            store(node.input[1], _pow2_up(old_scale[node.input[1]]))
    dq_of = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    weights = {n.input[0] for n in dq_of.values() if n.input[0] in inits and array(n.input[0]).dtype == np.int8}
    for node in dq_of.values():
        if node.input[0] in weights and node.input[1] not in old_scale:
            _requantize(node, array, store, old_scale, _pow2_up(array(node.input[1])))
    # Biases (int32): scale = input scale x weight scale of the layer that adds them.
    for node in model.graph.node:
        if len(node.input) < 3 or node.input[2] not in dq_of:
            continue
        bias_dq, x_dq, w_dq = dq_of[node.input[2]], dq_of.get(node.input[0]), dq_of.get(node.input[1])
        if x_dq is None or w_dq is None or bias_dq.input[1] in old_scale:
            continue
        new = (array(x_dq.input[1]) * array(w_dq.input[1])).astype(np.float32).reshape(array(bias_dq.input[1]).shape)
        _requantize(bias_dq, array, store, old_scale, new)


def _requantize(dq: Any, array, store, old_scale: dict[str, np.ndarray], new_scale: np.ndarray) -> None:
    """Constant q (with scale s, zero point z) -> round((q - z) * s / s') + z with scale s', same dtype."""
    q = array(dq.input[0])
    scale = array(dq.input[1])
    zero = array(dq.input[2]).astype(np.int64) if len(dq.input) > 2 and dq.input[2] else np.zeros_like(scale, np.int64)
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    shape = [1] * q.ndim
    if scale.size > 1:
        shape[axis] = scale.size
    info = np.iinfo(q.dtype)
    value = (q.astype(np.float64) - zero.reshape(shape)) * scale.reshape(shape)
    requant = np.clip(np.round(value / new_scale.reshape(shape)) + zero.reshape(shape), info.min, info.max)
    old_scale[dq.input[1]] = scale
    store(dq.input[0], requant.astype(q.dtype))
    store(dq.input[1], new_scale.astype(np.float32))


def qdq_scales(model: Any) -> dict[str, np.ndarray]:
    """DequantizeLinear scales by the tensor they dequantize (for reports and tests)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    return {n.input[0]: numpy_helper.to_array(inits[n.input[1]]) for n in model.graph.node
            if n.op_type == "DequantizeLinear" and n.input[1] in inits}
