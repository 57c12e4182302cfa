"""Which TF ops edgezoo lets a user's graph contain before it runs, converts or even imports it.

A frozen graph is a program: TF executes whatever its nodes say, and a node's output can depend (by data or by a
control edge) on `WriteFile('/any/path', ...)`, `ReadFile`, `MatchingFiles`, a saver, a summary writer, a queue or a
dataset reader, a PyFunc. Grappler's constant folding (run by TF's converter and by tf2onnx) even executes stateless
ops such as `ReadFile` at CONVERSION time and bakes the file into the model. So the rule is an ALLOW-list: the ops a
converted vision model can contain, and nothing else, checked on every node and every function of the graph's
library before anything is imported, run or converted (`check_graph_ops`; `tf_graph.load_graph_def` calls it).

Where the list comes from (tests/graphs/test_tf_op_policy.py keeps it honest):
- every op of edgezoo's TF stand-ins (MobileNet-v1, ResNet50, SSD-MobileNet, the OD API SSD variants: their
  Preprocessor/Postprocessor while loops and TensorArrays included) -- the test builds them and checks;
- the pure-compute ops tf2onnx 1.17 converts (its handler registry) and the TF ops TF's converter legalises to TFLite
  builtins, minus everything that reads or writes outside the tensors: files, savers, summaries, queues, readers,
  iterators and datasets, lookup tables, debug ops, Python callbacks, string decoders, and random ops (a verified
  model is deterministic);
- the control flow both frameworks emit (v1 Enter/Exit/Merge/Switch, v2 If/While/Case and function calls, whose
  callees are library functions checked in turn) and `Assert` (it can only fail the run).
A SavedModel's serving graph also reads its variables: `check_graph_ops(..., variables=True)` allows those reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edgezoo.core.errors import ModelFileError

_MATH = {
    "Abs", "Acos", "Acosh", "Add", "AddN", "AddV2", "All", "Any", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atan2",
    "Atanh", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Ceil", "ClipByValue", "Cos", "Cosh", "Cumprod", "Cumsum",
    "Div", "DivNoNan", "Equal", "Erf", "Exp", "Expm1", "Floor", "FloorDiv", "FloorMod", "Greater", "GreaterEqual",
    "Invert", "IsFinite", "IsInf", "IsNan", "LeftShift", "Less", "LessEqual", "Log", "Log1p", "LogicalAnd",
    "LogicalNot", "LogicalOr", "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "Max", "Maximum",
    "Mean", "Min", "Minimum", "Mod", "Mul", "MulNoNan", "Neg", "NotEqual", "Pow", "Prod", "RealDiv", "Reciprocal",
    "RightShift", "Rint", "Round", "Rsqrt", "SegmentMax", "SegmentMean", "SegmentMin", "SegmentProd", "SegmentSum",
    "Sign", "Sin", "Sinh", "Sqrt", "Square", "SquaredDifference", "Sub", "Sum", "Tan", "Tanh", "TruncateDiv",
    "TruncateMod", "UnsortedSegmentMax", "UnsortedSegmentMin", "UnsortedSegmentProd", "UnsortedSegmentSum",
    "Xdivy", "Xlogy",
}
_NN = {
    "AvgPool", "AvgPool3D", "BatchNormWithGlobalNormalization", "BiasAdd", "BiasAddV1", "Conv2D", "Conv3D",
    "Conv2DBackpropInput", "Conv3DBackpropInputV2", "DepthwiseConv2dNative", "Dilation2D", "Elu", "FusedBatchNorm",
    "FusedBatchNormV2", "FusedBatchNormV3", "FusedPadConv2D", "FusedResizeAndPadConv2D", "L2Loss", "LRN",
    "LeakyRelu", "LogSoftmax", "MaxPool", "MaxPool3D", "MaxPoolV2", "MaxPoolWithArgmax", "Relu", "Relu6", "Selu",
    "Sigmoid", "Softmax", "Softplus", "Softsign", "TopKV2", "InTopKV2",
    # Grappler's fused forms, found in graphs frozen after optimisation.
    "_FusedConv2D", "_FusedDepthwiseConv2dNative", "_FusedMatMul", "_FusedBatchNormEx",
}
_ARRAY = {
    "BatchToSpaceND", "Bitcast", "BroadcastArgs", "BroadcastGradientArgs", "BroadcastTo", "Cast", "CheckNumerics",
    "Concat", "ConcatOffset", "ConcatV2", "Const", "DepthToSpace", "DynamicPartition", "DynamicStitch", "EnsureShape",
    "ExpandDims", "ExtractImagePatches", "Fill", "Gather", "GatherNd", "GatherV2", "Identity", "IdentityN",
    "InvertPermutation", "LinSpace", "ListDiff", "MatrixBandPart", "MatrixDiag", "MatrixDiagPart", "MatrixDiagPartV2",
    "MatrixDiagPartV3", "MatrixDiagV2", "MatrixDiagV3", "MatrixSetDiag", "MatrixSetDiagV2", "MatrixSetDiagV3",
    "MirrorPad", "OneHot", "OnesLike", "Pack", "Pad", "PadV2", "Placeholder", "PlaceholderV2",
    "PlaceholderWithDefault", "PreventGradient", "Range", "Rank", "Reshape", "ReverseSequence", "ReverseV2", "Roll",
    "ScatterNd", "Select", "SelectV2", "Shape", "ShapeN", "Size", "Slice", "Snapshot", "SpaceToBatchND",
    "SpaceToDepth", "Split", "SplitV", "Squeeze", "StopGradient", "StridedSlice", "TensorScatterAdd",
    "TensorScatterMax", "TensorScatterMin", "TensorScatterSub", "TensorScatterUpdate", "Tile", "Transpose", "Unique",
    "UniqueWithCounts", "Unpack", "Where", "ZerosLike", "SparseToDense",
}
_IMAGE_AND_DETECTION = {
    "AdjustContrastv2", "AdjustHue", "AdjustSaturation", "CombinedNonMaxSuppression", "CropAndResize",
    "HSVToRGB", "NonMaxSuppression", "NonMaxSuppressionV2", "NonMaxSuppressionV3", "NonMaxSuppressionV4",
    "NonMaxSuppressionV5", "NonMaxSuppressionWithOverlaps", "RGBToHSV", "ResizeArea", "ResizeBicubic",
    "ResizeBilinear", "ResizeNearestNeighbor",
    # The post-processing custom op of OD API tflite_graph.pb exports: not a TF kernel, only the converter reads it.
    "TFLite_Detection_PostProcess",
}
_QUANTIZATION = {
    "FakeQuantWithMinMaxArgs", "FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxVarsPerChannel", "Dequantize",
    "QuantizeV2", "QuantizeAndDequantizeV2", "QuantizeAndDequantizeV3", "QuantizeAndDequantizeV4",
}
_CONTROL_FLOW = {
    "Assert", "ControlTrigger", "Enter", "Exit", "LoopCond", "Merge", "NextIteration", "NoOp", "Switch",
    "Case", "If", "PartitionedCall", "StatefulPartitionedCall", "StatelessCase", "StatelessIf", "StatelessWhile",
    "While",
}
_TENSOR_LISTS = {
    "TensorArrayV3", "TensorArrayReadV3", "TensorArrayWriteV3", "TensorArrayGatherV3", "TensorArrayScatterV3",
    "TensorArraySizeV3", "TensorArrayConcatV3", "TensorArraySplitV3", "TensorArrayCloseV3",
    "EmptyTensorList", "TensorListConcatV2", "TensorListElementShape", "TensorListFromTensor", "TensorListGather",
    "TensorListGetItem", "TensorListLength", "TensorListPopBack", "TensorListPushBack", "TensorListReserve",
    "TensorListResize", "TensorListScatterIntoExistingList", "TensorListSetItem", "TensorListSplit",
    "TensorListStack",
}
ALLOWED_OPS: frozenset[str] = frozenset(
    _MATH | _NN | _ARRAY | _IMAGE_AND_DETECTION | _QUANTIZATION | _CONTROL_FLOW | _TENSOR_LISTS)
# A SavedModel's serving function reads its weights from resource variables (never writes them).
VARIABLE_READS: frozenset[str] = frozenset({"VarHandleOp", "ReadVariableOp", "VarIsInitializedOp"})


class UnsafeGraphError(ModelFileError):
    """A user's graph contains an op outside the allow-list (file I/O, savers, Python calls, ...): never run."""


def graph_op_problem(graph_def: Any, *, variables: bool = False) -> tuple[str, str] | None:
    """(op, where in the graph) of the first op `check_graph_ops` refuses, or None when every op is allowed."""
    allowed = ALLOWED_OPS | VARIABLE_READS if variables else ALLOWED_OPS
    functions = {f.signature.name for f in graph_def.library.function}
    for where, node in _all_nodes(graph_def):
        if node.op not in allowed and node.op not in functions:
            return node.op, where
        for callee in _called_functions(node):
            if callee not in functions:  # a call op can name a primitive op as its "function": same rule
                if callee in allowed:
                    continue
                return callee, f"{where} (called as a function)"
    return None


def check_graph_ops(graph_def: Any, where: str | Path, *, variables: bool = False) -> None:
    """Refuse (UnsafeGraphError, exit 2, naming the op) a GraphDef holding any op outside the allow-list.

    Every place that runs, imports or converts a user's TF graph calls this first (tf_graph.load_graph_def does);
    for a SavedModel pass its serving function's graph (`concrete_function.graph.as_graph_def()`, library included)
    with `variables=True`."""
    problem = graph_op_problem(graph_def, variables=variables)
    if problem is None:
        return
    op, node = problem
    raise UnsafeGraphError(
        f"{where}: the graph contains op {op!r} (node {node!r}), which a converted model never holds; edgezoo runs "
        f"no graph with file, I/O, Python or other side-effect ops",
        hint="export the inference graph alone (only the ops from the input to the outputs) and try again")


def _all_nodes(graph_def: Any) -> Iterator[tuple[str, Any]]:
    for node in graph_def.node:
        yield node.name, node
    for function in graph_def.library.function:
        for node in function.node_def:
            yield f"{function.signature.name}/{node.name}", node


def _called_functions(node: Any) -> Iterable[str]:
    """Names in the node's function-typed attributes (If/While branches, PartitionedCall's f, ...)."""
    for value in node.attr.values():
        kind = value.WhichOneof("value")
        if kind == "func":
            yield value.func.name
        elif kind == "list":
            yield from (f.name for f in value.list.func)
