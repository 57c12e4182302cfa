"""The TIDL check on graphs built in the test: the ResNet cut, unsupported ops with reasons, checkable constraints."""

from __future__ import annotations

import numpy as np
import pytest

import tiny_models as tm
from edgezoo.tidl.check import check_model, proposed_cut

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _save(tmp_path, name, nodes, inputs, outputs, inits=(), opset=11):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _f(name, *shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _w(name, *shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).normal(0, 0.1, shape).astype(np.float32), name)


def resnet_tail(tmp_path, opset=11):
    """tf2onnx's ResNet50 v1.5 shape: NCHW input with symbolic batch, ..., Mean (keepdims) -> Squeeze -> dense ->
    softmax_tensor (class axis) and ArgMax (2-D, keepdims 0)."""
    nodes = [
        helper.make_node("Conv", ["input_tensor:0", "k"], ["resnet_model/conv2d/Conv2D:0"],
                         name="resnet_model/conv2d/Conv2D", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["resnet_model/conv2d/Conv2D:0"], ["resnet_model/Relu:0"], name="resnet_model/Relu"),
        helper.make_node("ReduceMean", ["resnet_model/Relu:0"], ["resnet_model/Mean:0"], name="resnet_model/Mean",
                         axes=[2, 3], keepdims=1),
        helper.make_node("Squeeze", ["resnet_model/Mean:0"] + (["sq_axes"] if opset >= 13 else []),
                         ["resnet_model/Squeeze:0"], name="resnet_model/Squeeze",
                         **({} if opset >= 13 else {"axes": [2, 3]})),
        helper.make_node("MatMul", ["resnet_model/Squeeze:0", "dense_w"], ["resnet_model/dense/MatMul:0"],
                         name="resnet_model/dense/MatMul"),
        helper.make_node("Add", ["resnet_model/dense/MatMul:0", "dense_b"], ["resnet_model/dense/BiasAdd:0"],
                         name="resnet_model/dense/BiasAdd"),
        helper.make_node("Softmax", ["resnet_model/dense/BiasAdd:0"], ["softmax_tensor:0"], name="softmax_tensor",
                         axis=1),
        helper.make_node("ArgMax", ["resnet_model/dense/BiasAdd:0"], ["ArgMax:0"], name="ArgMax", axis=1,
                         keepdims=0),
    ]
    return _save(tmp_path, f"resnet_tail{opset}", nodes, [_f("input_tensor:0", "unk__616", 3, 8, 8)],
                 [helper.make_tensor_value_info("ArgMax:0", TensorProto.INT64, ["unk__616"]),
                  _f("softmax_tensor:0", "unk__616", 1001)],
                 [_w("k", 4, 3, 3, 3), _w("dense_w", 4, 1001), _w("dense_b", 1001),
                  numpy_helper.from_array(np.array([2, 3], np.int64), "sq_axes")], opset)


@pytest.mark.parametrize("opset", [8, 11, 13])
def test_resnet_cut_found_by_itself(tmp_path, opset):
    report = check_model(resnet_tail(tmp_path, opset))
    assert report.cut == ["resnet_model/dense/BiasAdd:0"]
    assert {(f.node, f.op) for f in report.unsupported} == {("softmax_tensor", "Softmax"), ("ArgMax", "ArgMax")}
    reasons = {f.op: f.reason for f in report.unsupported}
    assert "class axis" in reasons["Softmax"] and "keepdims" in reasons["ArgMax"]
    assert report.runnable == 6 and report.nodes == 8 and not report.whole_graph


def test_tf2onnx_resnet_names(tmp_path):
    """The real converter on a tiny graph with the published ResNet names: the same cut comes out."""
    tf2onnx = pytest.importorskip("tf2onnx")
    import tensorflow as tf

    pb = tm.build_tf_pb(tmp_path / "r.pb", input_name="input_tensor", logits_name="resnet_model/dense/BiasAdd",
                        probs_name="softmax_tensor")
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(pb.read_bytes())
    model, _ = tf2onnx.convert.from_graph_def(gd, input_names=["input_tensor:0"],
                                              output_names=["ArgMax:0", "softmax_tensor:0"], opset=11,
                                              inputs_as_nchw=["input_tensor:0"])
    path = tmp_path / "r.onnx"
    path.write_bytes(model.SerializeToString())
    assert proposed_cut(path) == ["resnet_model/dense/BiasAdd:0"]


def test_detection_style_graph_reports_nms_loop_shape(tmp_path):
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Relu", ["v_in"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []), _f("v_in", 1, 4, 8, 8)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), _f("v_out", 1, 4, 8, 8)])
    nodes = [
        helper.make_node("Conv", ["image", "k"], ["feat"], name="backbone/conv", kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Conv", ["feat", "kbox"], ["box_head"], name="BoxPredictor/conv", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["feat", "kcls"], ["cls_head"], name="ClassPredictor/conv", kernel_shape=[1, 1]),
        helper.make_node("Shape", ["box_head"], ["box_shape"], name="Shape_1"),
        helper.make_node("Reshape", ["box_head", "box_shape"], ["boxes_same"], name="Reshape_dyn"),
        helper.make_node("Reshape", ["boxes_same", "to_boxes"], ["boxes"], name="Reshape_boxes"),
        helper.make_node("Reshape", ["cls_head", "to_scores"], ["scores"], name="Reshape_scores"),
        helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["selected"], name="nms"),
        helper.make_node("Loop", ["trip", "", "feat"], ["looped"], name="loop", body=body),
    ]
    inits = [_w("k", 4, 3, 3, 3), _w("kbox", 4, 4, 1, 1), _w("kcls", 2, 4, 1, 1),
             numpy_helper.from_array(np.array([1, -1, 4], np.int64), "to_boxes"),
             numpy_helper.from_array(np.array([1, 2, -1], np.int64), "to_scores"),
             numpy_helper.from_array(np.array(2, np.int64), "trip")]
    path = _save(tmp_path, "det", nodes, [_f("image", 1, 3, 8, 8)],
                 [helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3]), _f("looped", 1, 4, 8, 8)],
                 inits)
    report = check_model(path)
    bad = {f.op: f.reason for f in report.unsupported}
    assert set(bad) == {"Shape", "Reshape", "NonMaxSuppression", "Loop"}
    assert "dynamic Reshape" in bad["Reshape"] and "Arm" in bad["NonMaxSuppression"]
    # The heads stay on TIDL; the box head's reshape depends on Shape, so the cut is at box_head itself.
    assert report.cut == ["feat", "box_head", "scores"]
    assert [f.node for f in report.unsupported if f.op == "Reshape"] == ["Reshape_dyn"]


def _one(tmp_path, name, node, in_shape, out_shape, inits=(), extra_inputs=()):
    return check_model(_save(tmp_path, name, [node], [_f("x", *in_shape), *extra_inputs], [_f("y", *out_shape)],
                             inits, opset=13))


@pytest.mark.parametrize("kernel,stride,ok", [(3, 1, True), (5, 2, True), (7, 1, True), (9, 1, False),
                                              (3, 3, False)])
def test_depthwise_constraint(tmp_path, kernel, stride, ok):
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=8, kernel_shape=[kernel, kernel],
                            strides=[stride, stride], pads=[kernel // 2] * 4)
    out = (16 + 2 * (kernel // 2) - kernel) // stride + 1
    report = _one(tmp_path, f"dw{kernel}{stride}", node, (1, 8, 16, 16), (1, 8, out, out), [_w("w", 8, 1, kernel, kernel)])
    assert (not report.unsupported) == ok
    if not ok:
        assert "depthwise" in report.unsupported[0].reason


def test_softmax_on_width_is_fine_but_on_channels_not(tmp_path):
    w = _one(tmp_path, "sm_w", helper.make_node("Softmax", ["x"], ["y"], axis=-1), (1, 4, 8, 8), (1, 4, 8, 8))
    c = _one(tmp_path, "sm_c", helper.make_node("Softmax", ["x"], ["y"], axis=1), (1, 4, 8, 8), (1, 4, 8, 8))
    assert not w.unsupported and c.unsupported[0].op == "Softmax"


def test_argmax_channel_keepdims_is_fine(tmp_path):
    node = helper.make_node("ArgMax", ["x"], ["y"], axis=-3, keepdims=1)
    path = _save(tmp_path, "am", [node], [_f("x", 1, 4, 8, 8)],
                 [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 1, 8, 8])], opset=13)
    assert not check_model(path).unsupported


def test_cast_inside_graph_resize_and_concat(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Cast", ["r"], ["c"], name="cast_mid", to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["c"], ["c32"], name="cast_back", to=TensorProto.FLOAT),
        helper.make_node("Resize", ["c32", "", "s2"], ["up2"], name="resize2", mode="nearest"),
        helper.make_node("Resize", ["x", "", "s3"], ["up3"], name="resize3", mode="nearest"),
        helper.make_node("Concat", ["x", "x"], ["cat0"], name="cat_batch", axis=0),
        helper.make_node("Cast", ["cat0"], ["y"], name="cast_out", to=TensorProto.INT32),
    ]
    inits = [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s2"),
             numpy_helper.from_array(np.array([1, 1, 3, 3], np.float32), "s3")]
    path = _save(tmp_path, "misc", nodes, [_f("x", 1, 4, 8, 8)],
                 [helper.make_tensor_value_info("y", TensorProto.INT32, [2, 4, 8, 8]), _f("up2", 1, 4, 16, 16),
                  _f("up3", 1, 4, 24, 24)], inits, opset=13)
    bad = {f.node: f.reason for f in check_model(path).unsupported}
    assert set(bad) == {"cast_mid", "cast_back", "resize3", "cat_batch"}
    assert "powers of 2" in bad["resize3"] and "batch" in bad["cat_batch"]


def test_tflite_argmax_tail_and_depthwise(tmp_path):
    pb = tm.build_tf_pb(tmp_path / "m.pb")
    path = tm.build_tflite(pb, tmp_path / "m.tflite", ["probs", "ArgMax"])
    report = check_model(path)
    assert [f.op for f in report.unsupported] == ["ARG_MAX"]
    assert "probs" in report.cut and any("BiasAdd" in c for c in report.cut)

    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 16, 16, 4], name="x")
        k = tf.constant(np.random.default_rng(0).normal(0, 0.1, (9, 9, 4, 1)).astype(np.float32))
        tf.nn.relu(tf.nn.depthwise_conv2d(x, k, [1, 1, 1, 1], "SAME"), name="y")
    (tmp_path / "dw.pb").write_bytes(graph.as_graph_def().SerializeToString())
    conv = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(str(tmp_path / "dw.pb"), ["x"], ["y"])
    (tmp_path / "dw.tflite").write_bytes(conv.convert())
    dw = check_model(tmp_path / "dw.tflite")
    assert [f.op for f in dw.unsupported] == ["DEPTHWISE_CONV_2D"] and "9x9" in dw.unsupported[0].reason
    assert dw.cut == []  # nothing TIDL-runnable is connected to the input


def test_whole_graph_runs(tmp_path):
    report = check_model(tm.build_onnx(tmp_path / "cut.onnx", with_tail=False))
    assert report.whole_graph and report.cut == ["dense/BiasAdd:0"] and report.subgraphs == 1


def test_shape_arithmetic_is_reported_as_such(tmp_path):
    """PyTorch-style Shape -> Gather -> Unsqueeze -> Concat -> Reshape: the chain is run-time shape work, not layers."""
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["head"], name="head", kernel_shape=[1, 1]),
        helper.make_node("Shape", ["head"], ["s"], name="Shape_1"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="Gather_2", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="Unsqueeze_3"),
        helper.make_node("Concat", ["n1", "rest"], ["shape"], name="Concat_4", axis=0),
        helper.make_node("Reshape", ["head", "shape"], ["y"], name="Reshape_5"),
    ]
    inits = [_w("k", 8, 4, 1, 1), numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "ax0"),
             numpy_helper.from_array(np.array([4, -1], np.int64), "rest")]
    report = check_model(_save(tmp_path, "shape_math", nodes, [_f("x", 1, 4, 4, 4)], [_f("y", 1, 4, 32)], inits,
                               opset=13))
    reasons = {f.node: f.reason for f in report.unsupported}
    assert set(reasons) == {"Shape_1", "Gather_2", "Unsqueeze_3", "Concat_4", "Reshape_5"}
    assert "shape computation" in reasons["Concat_4"] and "dynamic Reshape" in reasons["Reshape_5"]
    assert report.cut == ["head"] and not report.limited
