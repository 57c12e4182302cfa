"""Classification stand-ins: published names/format/structure, and realistic activations (not trivially passing)."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from edgezoo import zoo
from edgezoo.datasets import images
from edgezoo.graphs.runners import load_runner
from edgezoo.preprocessing.card import preprocess
from edgezoo.standins import StandinVariant, get_builder
from edgezoo.standins import classification as cls

RESNET_ENDS = ["resnet_model/block_layer1", "resnet_model/block_layer4", "resnet_model/dense/BiasAdd", "ArgMax",
               "softmax_tensor"]
MOBILENET_ENDS = ["MobilenetV1/MobilenetV1/Conv2d_13_pointwise/Relu6", "MobilenetV1/Logits/SpatialSqueeze",
                  "MobilenetV1/Predictions/Reshape_1"]


def _feed(card_id: str, layout: str = "NHWC") -> np.ndarray:
    spec = zoo.get_card(card_id).preprocess
    return np.concatenate([preprocess(img, spec, layout=layout) for _, img in images.verification_images()])


def _run_pb(path, input_name, outputs, x):
    runner = load_runner(path, outputs=outputs)
    return [runner.run({input_name: x[i:i + 1]}) for i in range(len(x))]


def _stack(runs, name):
    return np.concatenate([r[name] for r in runs])


@pytest.fixture(scope="module")
def reduced_resnet_pb(tmp_path_factory):
    path = tmp_path_factory.mktemp("resnet") / "resnet50_v1.pb"
    get_builder("resnet50-pb").build(path, StandinVariant.REDUCED, 0)
    return path


@pytest.fixture(scope="module")
def reduced_mobilenet_tgz(tmp_path_factory):
    path = tmp_path_factory.mktemp("mobilenet") / "mobilenet_v1_1.0_224.tgz"
    get_builder("mobilenet-v1-tgz").build(path, StandinVariant.REDUCED, 0)
    with tarfile.open(path) as tar:
        tar.extractall(path.parent, filter="data")
    return path


def _assert_realistic(logits: np.ndarray, hidden: list[np.ndarray]) -> None:
    # Activations O(1) all the way down (a naive random init gives ~1e-19 logits and trivially passing parity).
    for h in hidden:
        assert 0.2 < float(h.std()) < 5.0, float(h.std())
    per_image_std = logits.std(axis=1)
    assert np.all((per_image_std > 0.5) & (per_image_std < 20)), per_image_std
    top1 = logits.argmax(axis=1)
    # Distinct top-1 across the verification images: the top-1 agreement check means something.
    assert len(set(top1.tolist())) >= len(top1) - 1, top1
    assert np.isfinite(logits).all()


def test_resnet50_pb_names_shapes_and_realism(reduced_resnet_pb):
    from edgezoo.graphs import tf_graph

    graph_def = tf_graph.load_graph_def(reduced_resnet_pb)
    ops = tf_graph.ops(graph_def)
    assert tf_graph.placeholders(graph_def) == ["input_tensor"]
    assert ops["resnet_model/dense/BiasAdd"] == "BiasAdd" and ops["ArgMax"] == "ArgMax"
    assert ops["softmax_tensor"] == "Softmax"
    assert set(tf_graph.sink_nodes(graph_def)) == {"ArgMax", "softmax_tensor"}
    # v1.5: the stride-2 bottleneck strides in its 3x3 convolution (after an explicit Pad), not in the first 1x1.
    nodes = {n.name: n for n in graph_def.node}
    strided = [n for n in graph_def.node if n.op == "Conv2D" and list(n.attr["strides"].list.i) == [1, 2, 2, 1]]
    kernel_sizes = [nodes[n.input[1].removesuffix("/read")].attr["value"].tensor.tensor_shape.dim[0].size
                    for n in strided]
    # stem 7x7, then per strided stage: the 1x1 projection shortcut and the 3x3 of the bottleneck (v1 had a 1x1)
    assert sorted(kernel_sizes) == [1, 1, 1, 3, 3, 3, 7]

    runs = _run_pb(reduced_resnet_pb, "input_tensor", RESNET_ENDS, _feed("resnet50-v1.5"))
    logits = _stack(runs, "resnet_model/dense/BiasAdd")
    assert logits.shape == (6, 1001)
    assert _stack(runs, "ArgMax").dtype == np.int64
    np.testing.assert_array_equal(_stack(runs, "ArgMax"), logits.argmax(axis=1))
    np.testing.assert_allclose(_stack(runs, "softmax_tensor").sum(axis=1), 1.0, rtol=1e-5)
    _assert_realistic(logits, [_stack(runs, "resnet_model/block_layer1"), _stack(runs, "resnet_model/block_layer4")])


def test_mobilenet_tgz_members_names_and_realism(reduced_mobilenet_tgz):
    from edgezoo.graphs import tf_graph, tflite_model

    with tarfile.open(reduced_mobilenet_tgz) as tar:
        assert sorted(tar.getnames()) == sorted(cls.MOBILENET_MEMBERS)
        assert all(m.mtime == 0 and m.isfile() for m in tar.getmembers())
    folder = reduced_mobilenet_tgz.parent
    pb = folder / "mobilenet_v1_1.0_224_frozen.pb"
    graph_def = tf_graph.load_graph_def(pb)
    ops = tf_graph.ops(graph_def)
    assert tf_graph.placeholders(graph_def) == ["input"]
    assert ops["MobilenetV1/MobilenetV1/Conv2d_1_depthwise/depthwise"] == "DepthwiseConv2dNative"
    assert ops["MobilenetV1/Conv2d_1_depthwise/depthwise_weights"] == "Const"  # slim: weights outside the op scope
    assert ops["MobilenetV1/Logits/SpatialSqueeze"] == "Squeeze"
    assert ops["MobilenetV1/Predictions/Softmax"] == "Softmax"
    assert tf_graph.sink_nodes(graph_def) == ["MobilenetV1/Predictions/Reshape_1"]
    depthwise = [n for n in ops.values() if n == "DepthwiseConv2dNative"]
    assert len(depthwise) == 13

    runs = _run_pb(pb, "input", MOBILENET_ENDS, _feed("mobilenet-v1"))
    logits = _stack(runs, "MobilenetV1/Logits/SpatialSqueeze")
    _assert_realistic(logits, [_stack(runs, MOBILENET_ENDS[0])])
    probs = _stack(runs, "MobilenetV1/Predictions/Reshape_1")
    assert probs.max(axis=1).min() > 2 / 1001  # a softmax with some confidence, not uniform

    tflite = folder / "mobilenet_v1_1.0_224.tflite"
    assert "SOFTMAX" in tflite_model.op_names(tflite)  # converted from the .pb, ending in the Predictions
    out = load_runner(tflite).run({"input": _feed("mobilenet-v1")[:1]})
    np.testing.assert_allclose(next(iter(out.values())), probs[:1], atol=1e-4)
    assert "STAND-IN" in (folder / "mobilenet_v1_1.0_224_info.txt").read_text()


@pytest.mark.parametrize("builder,opset,input_name,outputs,card", [
    ("resnet50-onnx-opset8", 8, "input_tensor:0", ["ArgMax:0", "softmax_tensor:0"], "resnet50-v1.5"),
    ("resnet50-onnx-opset11", 11, "input_tensor:0", ["ArgMax:0", "softmax_tensor:0"], "resnet50-v1.5"),
    ("mobilenet-v1-onnx", 8, "input:0", ["MobilenetV1/Predictions/Reshape_1:0"], "mobilenet-v1"),
])
def test_onnx_standins_as_published(tmp_path, builder, opset, input_name, outputs, card):
    from edgezoo.graphs import onnx_model

    path = tmp_path / "model.onnx"
    get_builder(builder).build(path, StandinVariant.REDUCED, 0)
    model = onnx_model.load(path)
    assert onnx_model.opset(model) == opset
    (inp,) = onnx_model.graph_inputs(model)
    info = onnx_model.info(inp)
    assert info.name == input_name
    assert isinstance(info.shape[0], str) and info.shape[1:] == (3, 224, 224)  # symbolic batch, NCHW
    assert onnx_model.output_names(model) == outputs
    x = _feed(card, "NCHW")[:2]
    runner = load_runner(path)
    probs = np.concatenate([runner.run({input_name: x[i:i + 1]})[outputs[-1]] for i in range(2)])
    assert probs.shape == (2, 1001)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
    assert probs.argmax(axis=1)[0] != probs.argmax(axis=1)[1]


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path):
    paths = [tmp_path / f"{k}.tgz" for k in range(3)]
    for path, seed in zip(paths, (0, 0, 1)):
        get_builder("mobilenet-v1-tgz").build(path, StandinVariant.REDUCED, seed)
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b and a != c


@pytest.mark.fullsize
def test_full_size_resnet50_has_published_size_and_realistic_logits(tmp_path):
    path = tmp_path / "resnet50_v1.pb"
    get_builder("resnet50-pb").build(path, StandinVariant.FULL, 0)
    assert 95e6 < path.stat().st_size < 110e6  # the published file is ~102 MB (25.6 M parameters)
    runs = _run_pb(path, "input_tensor", RESNET_ENDS, _feed("resnet50-v1.5"))
    assert _stack(runs, "resnet_model/block_layer4").shape == (6, 7, 7, 2048)
    _assert_realistic(_stack(runs, "resnet_model/dense/BiasAdd"),
                      [_stack(runs, "resnet_model/block_layer1"), _stack(runs, "resnet_model/block_layer4")])
