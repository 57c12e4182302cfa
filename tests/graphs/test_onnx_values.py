"""Integer expressions read by value: what a limit in an exported graph is worth, never a shape constant."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from edgezoo.graphs import onnx_model
from edgezoo.graphs.onnx_values import GraphIndex, scalar_bound


def _topk_after_nms(total_const: int = 200, extra_op: str | None = None):
    """boxes/scores -> NonMaxSuppression -> n = Shape(selected)[0] -> k = Reshape(Min(T, Cast(n)), [1]) -> TopK, the
    way torch.onnx writes `k = min(T, n); scores.topk(k)`."""
    inits = [numpy_helper.from_array(np.array([10], np.int64), "per_class"),
             numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
             numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array(total_const, np.int64), "total"),
             numpy_helper.from_array(np.array([1], np.int64), "one_shape")]
    nodes = [helper.make_node("NonMaxSuppression", ["boxes", "scores", "per_class", "iou"], ["selected"]),
             helper.make_node("Shape", ["selected"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
             helper.make_node("Cast", ["n"], ["n64"], to=TensorProto.INT64),
             helper.make_node("Min", ["total", "n64"], ["k0"]),
             helper.make_node("Reshape", ["k0", "one_shape"], ["k"])]
    k = "k"
    if extra_op == "Softplus":  # an op the reader does not evaluate
        nodes.append(helper.make_node("Softplus", ["k"], ["k_soft"]))
        k = "k_soft"
    nodes += [helper.make_node("Gather", ["selected", "zero"], ["first"], axis=1),
              helper.make_node("Cast", ["first"], ["first_f"], to=TensorProto.FLOAT),
              helper.make_node("TopK", ["first_f", k], ["top", "top_i"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 8, 4]),
                                           helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3, 8])],
                              [helper.make_tensor_value_info("top", TensorProto.FLOAT, None)], inits)
    return onnx_model.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def test_min_of_a_constant_and_a_run_time_count_is_the_constant_never_the_reshape_shape():
    model = _topk_after_nms(200)
    g = GraphIndex(model)
    topk = next(n for n in model.graph.node if n.op_type == "TopK")
    assert scalar_bound(g, topk.input[1]) == 200.0
    assert scalar_bound(g, "n64") == float("inf")  # NonMaxSuppression's count: known only at run time
    assert scalar_bound(g, "one_shape") == 1.0  # the constant that used to be read as the limit


def test_an_op_the_reader_does_not_evaluate_makes_the_value_unknown():
    model = _topk_after_nms(200, extra_op="Softplus")
    topk = next(n for n in model.graph.node if n.op_type == "TopK")
    assert scalar_bound(GraphIndex(model), topk.input[1]) is None


def test_subgraphs_are_indexed_and_walked():
    """A NonMaxSuppression inside an If (torchvision's batched_nms): found, and its outputs lead out of the If."""
    inner = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"])], "then", [],
        [helper.make_tensor_value_info("sel", TensorProto.INT64, None)])
    other = helper.make_graph(
        [helper.make_node("Constant", [], ["empty"], value=numpy_helper.from_array(np.zeros((0, 3), np.int64)))],
        "else", [], [helper.make_tensor_value_info("empty", TensorProto.INT64, None)])
    nodes = [helper.make_node("If", ["cond"], ["picked"], then_branch=inner, else_branch=other),
             helper.make_node("Identity", ["picked"], ["out"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in
                                           (("cond", TensorProto.BOOL, []), ("boxes", TensorProto.FLOAT, [1, 8, 4]),
                                            ("scores", TensorProto.FLOAT, [1, 3, 8]))],
                              [helper.make_tensor_value_info("out", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    g = GraphIndex(model)
    reached = [n.op_type for n in g.downstream(["boxes"])]
    assert {"If", "NonMaxSuppression", "Identity"} <= set(reached)  # the If's outputs continue the walk
