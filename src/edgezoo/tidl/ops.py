"""TIDL operator support tables (ONNX and TFLite) with the constraints that can be checked from the graph.

Source: TI's published supported-operator table (edgeai-tidl-tools, supported_ops_rts_versions.md). An operator missing
from the tables is reported as "not in TIDL's supported operator list". Every rule returns a Verdict whose reason says
exactly which constraint failed, so a user can tell "TIDL cannot run this op" from "TIDL cannot run it like this".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Verdict:
    supported: bool
    reason: str = ""  # why not (when unsupported)
    limited: str = ""  # supported with limits TIDL documents but the graph cannot prove (say so, don't hide it)


OK = Verdict(True)


def no(reason: str) -> Verdict:
    return Verdict(False, reason)


def limited(note: str) -> Verdict:
    return Verdict(True, limited=note)


class NodeView:
    """What a rule may ask about a node, format-independent: attributes, input shapes/constants, graph position."""

    def __init__(self, op: str, attrs: dict[str, Any], input_shapes: Sequence[tuple | None],
                 input_consts: Sequence[np.ndarray | None], output_shapes: Sequence[tuple | None],
                 reads_graph_input: bool, writes_graph_output: bool, opset: int = 0,
                 input_is_const: Sequence[bool] | None = None) -> None:
        self.op, self.attrs = op, attrs
        self.input_shapes, self.input_consts, self.output_shapes = input_shapes, input_consts, output_shapes
        # Constant-ness can be known without the value (a folded constant sub-graph): rules about "run-time"
        # inputs ask is_const, rules about values ask const.
        self.input_is_const = input_is_const
        self.reads_graph_input, self.writes_graph_output, self.opset = reads_graph_input, writes_graph_output, opset

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def rank(self, i: int = 0) -> int | None:
        shape = self.input_shapes[i] if i < len(self.input_shapes) else None
        return None if shape is None else len(shape)

    def shape(self, i: int = 0) -> tuple | None:
        return self.input_shapes[i] if i < len(self.input_shapes) else None

    def const(self, i: int) -> np.ndarray | None:
        return self.input_consts[i] if i < len(self.input_consts) else None

    def has_input(self, i: int) -> bool:
        return i < len(self.input_shapes)

    def is_const(self, i: int) -> bool:
        if self.input_is_const is not None and i < len(self.input_is_const):
            return bool(self.input_is_const[i])
        return self.const(i) is not None


def _norm_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _power_of_two(x: float) -> bool:
    if x <= 0 or not math.isfinite(x):
        return False
    k = math.log2(x)
    return abs(k - round(k)) < 1e-6


# ----------------------------------------------------------------------------------------------------------------
# ONNX rules


def _onnx_conv(n: NodeView) -> Verdict:
    group = int(n.attr("group", 1))
    w = n.shape(1)
    if group > 1 and w is not None and len(w) == 4 and w[1] == 1:  # one input channel per group: depthwise
        kh, kw = (n.attr("kernel_shape") or w[2:])[:2]
        strides = list(n.attr("strides") or [1, 1])
        if kh != kw or kh not in (3, 5, 7):
            return no(f"depthwise Conv with a {kh}x{kw} kernel; TIDL runs depthwise 3x3, 5x5 and 7x7 only")
        if any(s not in (1, 2) for s in strides) or len(set(strides)) != 1:
            return no(f"depthwise Conv with strides {strides}; TIDL runs depthwise at stride 1 or 2 only")
    return OK


def _onnx_softmax(n: NodeView) -> Verdict:
    rank = n.rank()
    axis = int(n.attr("axis", 1 if n.opset and n.opset < 13 else -1))
    if rank is None:
        return no("Softmax on an input of unknown rank; TIDL runs Softmax on the width/height axis only "
                  "(run shape inference or fix the batch first)")
    a = _norm_axis(axis, rank)
    # Before opset 13 Softmax flattens from `axis` on: only the last axis alone is a true per-axis softmax.
    if rank >= 3 and (a == rank - 1 or (a == rank - 2 and (not n.opset or n.opset >= 13))):
        return OK
    return no(f"Softmax on axis {axis} of a rank-{rank} tensor is on the channel/class axis; TIDL runs Softmax "
              "on the width/height axis only")


def _onnx_argmax(n: NodeView) -> Verdict:
    rank, axis, keep = n.rank(), int(n.attr("axis", 0)), int(n.attr("keepdims", 1))
    if rank is None:
        return no("ArgMax on an input of unknown rank; TIDL needs axis -3 (channels of NCHW) with keepdims 1")
    if rank != 4 or _norm_axis(axis, rank) != 1 or keep != 1:
        return no(f"ArgMax axis {axis}, keepdims {keep} on a rank-{rank} tensor; TIDL runs ArgMax on axis -3 "
                  "(channels of a 4-D NCHW tensor) with keepdims 1 only")
    return OK


def _onnx_reshape(n: NodeView) -> Verdict:
    if n.has_input(1) and not n.is_const(1):
        return no("dynamic Reshape: the target shape is computed at run time; TIDL needs a constant shape "
                  "(fix the batch and simplify the model first)")
    return OK


def _concat(op: str, default_axis: int) -> Callable[[NodeView], Verdict]:
    """Concat (ONNX) / CONCATENATION (TFLite): TIDL concatenates along non-batch axes only."""
    def rule(n: NodeView) -> Verdict:
        axis, rank = int(n.attr("axis", default_axis)), n.rank()
        if axis == 0 or (rank is not None and _norm_axis(axis, rank) == 0):
            return no(f"{op} on the batch axis; TIDL concatenates along non-batch axes only")
        return OK

    return rule


def _axes(n: NodeView, input_index: int) -> list[int] | None:
    """Axes from the attribute (older opsets) or a constant input (newer opsets); None when run-time."""
    if n.attr("axes") is not None:
        return [int(a) for a in n.attr("axes")]
    if n.has_input(input_index):
        c = n.const(input_index)
        return None if c is None else [int(a) for a in np.ravel(c)]
    return []  # all axes


def _onnx_slice(n: NodeView) -> Verdict:
    if n.opset and n.opset >= 10:
        if any(n.has_input(i) and not n.is_const(i) for i in range(1, 5)):
            return no("Slice with starts/ends/axes/steps computed at run time; TIDL needs constant slices")
    shape = n.shape(0)
    if shape and isinstance(shape[0], int) and shape[0] > 1:
        return no(f"Slice on a batch of {shape[0]}; TIDL slices batch-1 tensors only")
    axes = _axes(n, 3) if n.opset and n.opset >= 10 else [int(a) for a in (n.attr("axes") or [])]
    if axes and n.rank() and 0 in [_norm_axis(a, n.rank()) for a in axes]:
        return no("Slice along the batch axis; TIDL slices non-batch axes only")
    return OK


def _onnx_split(n: NodeView) -> Verdict:
    if n.has_input(1) and not n.is_const(1):
        return no("Split with sizes computed at run time; TIDL needs constant splits")
    axis, rank = int(n.attr("axis", 0)), n.rank()
    if rank is not None and _norm_axis(axis, rank) == 0:
        return no("Split along the batch axis; TIDL splits non-batch axes only")
    return OK


def _onnx_resize(n: NodeView) -> Verdict:
    scales: np.ndarray | None = None
    if n.op == "Upsample" or (n.opset and n.opset < 11):
        scales = n.const(1) if n.has_input(1) else (np.asarray(n.attr("scales")) if n.attr("scales") else None)
    else:
        scales = n.const(2) if n.has_input(2) else None
        if scales is not None and scales.size == 0:
            scales = None
        if scales is None and n.has_input(3):
            sizes, shape = n.const(3), n.shape(0)
            if sizes is not None and shape and all(isinstance(d, int) and d > 0 for d in shape):
                scales = np.asarray(sizes, dtype=np.float64) / np.asarray(shape, dtype=np.float64)
    if scales is None:
        return no("Resize with scales/sizes computed at run time; TIDL needs constant power-of-2 scales")
    s = [float(x) for x in np.ravel(scales)]
    if len(s) == 4 and (s[0] != 1 or s[1] != 1):
        return no(f"Resize scales {s} change batch or channels; TIDL resizes height and width only")
    if not all(_power_of_two(x) for x in s[-2:]):
        return no(f"Resize scales {s[-2:]} are not powers of 2; TIDL resizes by powers of 2 only")
    return OK


def _onnx_pad(n: NodeView) -> Verdict:
    mode = n.attr("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "constant":
        return no(f"Pad mode {mode!r}; TIDL pads with a constant only")
    pads = np.asarray(n.attr("pads")) if n.attr("pads") is not None else n.const(1) if n.has_input(1) else None
    if pads is None:
        return no("Pad amounts computed at run time; TIDL needs constant pads")
    pads = [int(p) for p in np.ravel(pads)]
    rank = len(pads) // 2
    if rank >= 3 and any(pads[i] or pads[rank + i] for i in range(rank - 2)):
        return no(f"Pad {pads} pads batch or channels; TIDL pads height and width only")
    return OK


def _reduce(kind: str) -> Callable[[NodeView], Verdict]:
    def rule(n: NodeView) -> Verdict:
        axes, rank = _axes(n, 1), n.rank()
        if axes is None or rank is None:
            return no(f"{n.op} with run-time axes or unknown rank; TIDL needs {kind}")
        norm = sorted({_norm_axis(a, rank) for a in (axes or range(rank))})
        if n.op == "ReduceMean":
            # A mean over both spatial axes of a 4-D tensor is a global average pool, which TIDL runs.
            if rank == 4 and norm in ([2, 3], [1, 2]):
                return OK
            return no(f"standalone ReduceMean over axes {norm} of a rank-{rank} tensor; TIDL runs ReduceMean only "
                      "as a global average pool over height and width")
        if rank == 4 and norm == [2]:
            return OK
        return no(f"{n.op} over axes {norm} of a rank-{rank} tensor; TIDL reduces over the height axis only")

    return rule


def _onnx_cast(n: NodeView) -> Verdict:
    if n.reads_graph_input or n.writes_graph_output:
        return OK
    return no("Cast inside the graph; TIDL runs Cast only at the graph's inputs and outputs")


def _two_inputs(n: NodeView) -> Verdict:
    count = len(n.input_shapes)
    return OK if count == 2 else no(f"{n.op} with {count} inputs; TIDL runs it with 2 inputs only")


_ONNX_PLAIN = (
    "MaxPool AveragePool GlobalAveragePool GlobalMaxPool Relu PRelu LeakyRelu Clip Sigmoid Tanh HardSigmoid HardSwish "
    "Elu Selu Softplus Mish Gelu Gemm MatMul BatchNormalization Flatten Squeeze Unsqueeze Transpose DepthToSpace "
    "SpaceToDepth GridSample LayerNormalization InstanceNormalization QuantizeLinear DequantizeLinear Identity "
    "Dropout"
).split()

ONNX_RULES: dict[str, Callable[[NodeView], Verdict]] = {op: (lambda n: OK) for op in _ONNX_PLAIN}
ONNX_RULES.update({
    "Conv": _onnx_conv, "Softmax": _onnx_softmax, "ArgMax": _onnx_argmax, "Reshape": _onnx_reshape,
    "Concat": _concat("Concat", 1), "Slice": _onnx_slice, "Split": _onnx_split, "Resize": _onnx_resize,
    "Upsample": _onnx_resize, "Pad": _onnx_pad, "ReduceMax": _reduce("the height axis"),
    "ReduceMin": _reduce("the height axis"), "ReduceMean": _reduce("a global average pool"), "Cast": _onnx_cast,
    "Add": _two_inputs, "Mul": _two_inputs, "Sub": _two_inputs, "Div": _two_inputs, "Max": _two_inputs,
    "ConvTranspose": lambda n: limited("ConvTranspose: TIDL support is limited (check on the device)"),
    "TopK": lambda n: limited("TopK: TIDL support is limited (check on the device)"),
    "Gather": lambda n: limited("Gather: TIDL support is limited (check on the device)"),
})

# Named in tidl.md as running on Arm (splitting the graph); the reason says so rather than "not in the list".
ONNX_KNOWN_UNSUPPORTED = {
    op: f"{op} is not supported by TIDL (runs on the Arm cores and splits the graph)"
    for op in ("NonMaxSuppression", "Loop", "If", "Scan", "Shape", "ConstantOfShape", "Where", "NonZero")
}


def onnx_verdict(n: NodeView, domain: str = "") -> Verdict:
    if domain not in ("", "ai.onnx"):
        return no(f"{n.op} from the custom domain {domain!r}; TIDL runs standard ONNX operators only")
    if n.op in ONNX_KNOWN_UNSUPPORTED:
        return no(ONNX_KNOWN_UNSUPPORTED[n.op])
    rule = ONNX_RULES.get(n.op)
    return rule(n) if rule else no(f"{n.op} is not in TIDL's supported operator list")


# ----------------------------------------------------------------------------------------------------------------
# TFLite rules (builtin options use the flatbuffer schema's camelCase names)


def _tfl_depthwise(n: NodeView) -> Verdict:
    w = n.shape(1)
    sh, sw = int(n.attr("strideH", 1)), int(n.attr("strideW", 1))
    if w is not None and len(w) == 4:
        kh, kw = int(w[1]), int(w[2])
        if kh != kw or kh not in (3, 5, 7):
            return no(f"DEPTHWISE_CONV_2D with a {kh}x{kw} kernel; TIDL runs depthwise 3x3, 5x5 and 7x7 only")
    if sh != sw or sh not in (1, 2):
        return no(f"DEPTHWISE_CONV_2D with strides {sh}x{sw}; TIDL runs depthwise at stride 1 or 2 only")
    return OK


def _tfl_reshape(n: NodeView) -> Verdict:
    if n.has_input(1) and not n.is_const(1):
        return no("dynamic RESHAPE: the target shape is computed at run time; TIDL needs a constant shape")
    return OK


def _tfl_mean(n: NodeView) -> Verdict:
    axes, rank = n.const(1), n.rank()
    if axes is None or rank is None:
        return no("MEAN with run-time axes or unknown rank; TIDL runs MEAN as a global average pool only")
    norm = sorted({_norm_axis(int(a), rank) for a in np.ravel(axes)})
    if rank == 4 and norm == [1, 2]:
        return OK
    return no(f"MEAN over axes {norm} of a rank-{rank} tensor; TIDL runs MEAN only as a global average pool over "
              "height and width")


def _tfl_pad(n: NodeView) -> Verdict:
    pads = n.const(1)
    if pads is None:
        return no("PAD amounts computed at run time; TIDL needs constant pads")
    pads = np.asarray(pads).reshape(-1, 2)
    if len(pads) == 4 and (pads[0].any() or pads[3].any()):
        return no(f"PAD {pads.tolist()} pads batch or channels; TIDL pads height and width only")
    return OK


def _tfl_resize(n: NodeView) -> Verdict:
    size, shape = n.const(1), n.shape(0)
    if size is None or not shape or len(shape) != 4:
        return no(f"{n.op} with a run-time size; TIDL needs constant power-of-2 scales")
    ratios = [float(size[0]) / shape[1], float(size[1]) / shape[2]]
    if not all(_power_of_two(r) for r in ratios):
        return no(f"{n.op} by {ratios}; TIDL resizes by powers of 2 only")
    return OK


def _tfl_argmax(n: NodeView) -> Verdict:
    axis, rank = n.const(1), n.rank()
    if axis is None or rank is None:
        return no("ARG_MAX with a run-time axis or unknown rank")
    a = _norm_axis(int(np.ravel(axis)[0]), rank)
    if rank != 4 or a != 3:
        return no(f"ARG_MAX over axis {a} of a rank-{rank} tensor; TIDL runs ARG_MAX over the channels of a 4-D "
                  "NHWC tensor only")
    return OK


_TFL_PLAIN = (
    "CONV_2D ADD MUL SUB AVERAGE_POOL_2D MAX_POOL_2D SOFTMAX FULLY_CONNECTED RELU RELU6 LOGISTIC TANH LEAKY_RELU "
    "PRELU HARD_SWISH SQUEEZE DEPTH_TO_SPACE SPACE_TO_DEPTH BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND QUANTIZE DEQUANTIZE"
).split()
TFLITE_RULES: dict[str, Callable[[NodeView], Verdict]] = {op: (lambda n: OK) for op in _TFL_PLAIN}
TFLITE_RULES.update({
    "DEPTHWISE_CONV_2D": _tfl_depthwise, "CONCATENATION": _concat("CONCATENATION", 0), "RESHAPE": _tfl_reshape,
    "MEAN": _tfl_mean,
    "PAD": _tfl_pad, "PADV2": _tfl_pad, "RESIZE_BILINEAR": _tfl_resize, "RESIZE_NEAREST_NEIGHBOR": _tfl_resize,
    "ARG_MAX": _tfl_argmax,
    "TRANSPOSE_CONV": lambda n: limited("TRANSPOSE_CONV: TIDL support is limited (check on the device)"),
})
META_ARCH_OPS = {
    "TFLite_Detection_PostProcess": "TFLite_Detection_PostProcess runs through TIDL's SSD meta-architecture "
                                    "(object_detection:meta_arch_type 1), not as a layer: the layers end at its inputs",
}


def tflite_verdict(n: NodeView) -> Verdict:
    if n.op in META_ARCH_OPS:
        return no(META_ARCH_OPS[n.op])
    rule = TFLITE_RULES.get(n.op)
    return rule(n) if rule else no(f"{n.op} is not in TIDL's supported TFLite operator list")
