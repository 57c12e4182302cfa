from __future__ import annotations

import numpy as np
import pytest

import tiny_models as tm
from edgezoo.core.errors import ModelFileError, TensorNameError
from edgezoo.graphs import onnx_model
from edgezoo.graphs.runners import load_runner


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return tm.build_onnx(tmp_path_factory.mktemp("onnxg") / "m.onnx")


def test_names(path):
    m = onnx_model.load(path)
    assert onnx_model.input_names(m) == ["x:0"]
    assert onnx_model.output_names(m) == ["ArgMax:0", "probs:0"]
    assert onnx_model.resolve(m, "dense/BiasAdd", "m") == "dense/BiasAdd:0"
    assert onnx_model.opset(m) == 13
    with pytest.raises(TensorNameError, match="did you mean 'dense/BiasAdd:0'"):
        onnx_model.resolve(m, "dense/BiasAdd_2:0", "m")


def test_fix_batch_cut_and_run(path, tmp_path):
    m = onnx_model.fix_batch(onnx_model.load(path))
    assert onnx_model.info(m.graph.input[0]).shape == (1, 3, tm.H, tm.W)
    cut = onnx_model.cut(m, ["dense/BiasAdd:0"])
    assert onnx_model.output_names(cut) == ["dense/BiasAdd:0"]
    assert {n.op_type for n in cut.graph.node}.isdisjoint({"Softmax", "ArgMax"})
    assert onnx_model.info(cut.graph.output[0]).shape == (1, tm.CLASSES)
    out = onnx_model.save(cut, tmp_path / "cut.onnx")
    x = np.random.default_rng(3).normal(0, 1, (1, tm.H, tm.W, 3)).astype(np.float32)
    got = load_runner(out).run({"x:0": x.transpose(0, 3, 1, 2)})["dense/BiasAdd:0"]
    np.testing.assert_allclose(got, tm.reference_logits(x), atol=1e-5)


def test_corrupt(path, tmp_path):
    with pytest.raises(ModelFileError, match="bad.onnx: not a valid ONNX model"):
        onnx_model.load(tm.truncate(path, tmp_path / "bad.onnx", 0.3))
