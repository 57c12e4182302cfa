"""Tiny models built in code for the engine tests: the same small classifier as a TF frozen graph (NHWC), an ONNX
model (NCHW, tf2onnx-style ':0' names) and a TFLite file. Weights are seeded; activations are O(1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

H = W = 16
C_IN, C_MID, CLASSES = 3, 8, 11


def weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv_w": (rng.normal(0, 1, (3, 3, C_IN, C_MID)) * np.sqrt(2 / (9 * C_IN))).astype(np.float32),  # HWIO
        "conv_b": rng.normal(0, 0.1, C_MID).astype(np.float32),
        "fc_w": (rng.normal(0, 1, (C_MID, CLASSES)) * np.sqrt(2 / C_MID) * 3).astype(np.float32),
        "fc_b": rng.normal(0, 0.1, CLASSES).astype(np.float32),
    }


def build_tf_pb(dest: Path, seed: int = 0, *, input_name: str = "x", logits_name: str = "dense/BiasAdd",
                probs_name: str = "probs", argmax_name: str | None = "ArgMax") -> Path:
    """A frozen GraphDef: x [-1,H,W,3] -> conv3x3 -> relu -> mean(H,W) -> dense -> logits -> softmax (+argmax)."""
    import tensorflow as tf

    w = weights(seed)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, H, W, C_IN], name=input_name)
        y = tf.nn.conv2d(x, tf.constant(w["conv_w"]), strides=1, padding="SAME", name="conv/Conv2D")
        y = tf.nn.relu(tf.nn.bias_add(y, tf.constant(w["conv_b"]), name="conv/BiasAdd"), name="conv/Relu")
        y = tf.reduce_mean(y, axis=[1, 2], name="pool")
        logits = tf.nn.bias_add(tf.matmul(y, tf.constant(w["fc_w"]), name="dense/MatMul"),
                                tf.constant(w["fc_b"]), name=logits_name)
        tf.nn.softmax(logits, name=probs_name)
        if argmax_name:
            tf.argmax(logits, axis=1, name=argmax_name)
    dest.write_bytes(graph.as_graph_def().SerializeToString())
    return dest


def build_tflite(pb: Path, dest: Path, outputs: list[str], input_name: str = "x") -> Path:
    import tensorflow as tf

    conv = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(str(pb), [input_name], outputs,
                                                               input_shapes={input_name: [1, H, W, C_IN]})
    dest.write_bytes(conv.convert())
    return dest


def build_onnx(dest: Path, seed: int = 0, *, perturb: float = 0.0, with_tail: bool = True,
               opset: int = 13) -> Path:
    """The same classifier in ONNX, NCHW input 'x:0' with a symbolic batch, logits 'dense/BiasAdd:0'.

    `perturb` adds that much to one fully-connected weight (a planted conversion error).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = weights(seed)
    fc_w = w["fc_w"].copy()
    fc_w[0, 3] += perturb
    inits = [
        numpy_helper.from_array(w["conv_w"].transpose(3, 2, 0, 1).copy(), "conv_w"),  # OIHW
        numpy_helper.from_array(w["conv_b"], "conv_b"),
        numpy_helper.from_array(fc_w, "fc_w"),
        numpy_helper.from_array(w["fc_b"], "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["x:0", "conv_w", "conv_b"], ["conv/BiasAdd:0"], name="conv/Conv2D",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv/BiasAdd:0"], ["conv/Relu:0"], name="conv/Relu"),
        helper.make_node("GlobalAveragePool", ["conv/Relu:0"], ["pool4d"], name="pool"),
        helper.make_node("Flatten", ["pool4d"], ["pool:0"], name="flatten"),
        helper.make_node("MatMul", ["pool:0", "fc_w"], ["dense/MatMul:0"], name="dense/MatMul"),
        helper.make_node("Add", ["dense/MatMul:0", "fc_b"], ["dense/BiasAdd:0"], name="dense/BiasAdd"),
    ]
    outputs = []
    if with_tail:
        nodes += [helper.make_node("Softmax", ["dense/BiasAdd:0"], ["probs:0"], name="probs", axis=1),
                  helper.make_node("ArgMax", ["dense/BiasAdd:0"], ["ArgMax:0"], name="ArgMax", axis=1, keepdims=0)]
        outputs = [helper.make_tensor_value_info("ArgMax:0", TensorProto.INT64, ["unk__1"]),
                   helper.make_tensor_value_info("probs:0", TensorProto.FLOAT, ["unk__1", CLASSES])]
    else:
        outputs = [helper.make_tensor_value_info("dense/BiasAdd:0", TensorProto.FLOAT, ["unk__1", CLASSES])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x:0", TensorProto.FLOAT,
                                                                            ["unk__1", C_IN, H, W])],
                              outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    dest.write_bytes(model.SerializeToString())
    return dest


def reference_logits(x_nhwc: np.ndarray, seed: int = 0) -> np.ndarray:
    """numpy forward pass of the classifier (for asserting runners compute the right numbers)."""
    w = weights(seed)
    n = x_nhwc.shape[0]
    padded = np.pad(x_nhwc, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, H, W, C_MID), np.float64)
    for i in range(3):
        for j in range(3):
            out += np.einsum("nhwc,co->nhwo", padded[:, i:i + H, j:j + W, :], w["conv_w"][i, j])
    out = np.maximum(out + w["conv_b"], 0).mean(axis=(1, 2))
    return (out @ w["fc_w"] + w["fc_b"]).astype(np.float32)


def truncate(src: Path, dest: Path, fraction: float = 0.6) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest
