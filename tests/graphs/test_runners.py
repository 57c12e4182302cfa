"""Each runner on a tiny classifier built in the test, checked against a numpy forward pass."""

from __future__ import annotations

import numpy as np
import pytest

import tiny_models as tm
from edgezoo.core.errors import ModelFileError, TensorNameError
from edgezoo.graphs.runners import RunnerError, load_runner


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("runners")
    pb = tm.build_tf_pb(d / "m.pb")
    return {"pb": pb, "onnx": tm.build_onnx(d / "m.onnx"),
            "tflite": tm.build_tflite(pb, d / "m.tflite", ["dense/BiasAdd"]), "dir": d}


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(7).normal(0, 1, (1, tm.H, tm.W, 3)).astype(np.float32)


def test_tf_runner_describes_and_computes(models, batch):
    r = load_runner(models["pb"])
    assert [(i.name, i.shape, i.dtype) for i in r.inputs] == [("x", (None, tm.H, tm.W, 3), "float32")]
    # No explicit outputs: the graph's sink nodes.
    assert [o.name for o in r.outputs] == ["probs", "ArgMax"]
    out = r.run({"x:0": batch}, outputs=["dense/BiasAdd", "probs:0"])
    ref = tm.reference_logits(batch)
    np.testing.assert_allclose(out["dense/BiasAdd"], ref, atol=1e-5)
    np.testing.assert_allclose(out["probs:0"].sum(axis=1), 1.0, atol=1e-6)
    assert int(r.run({"x": batch})["ArgMax"][0]) == int(ref.argmax())


def test_tf_runner_explicit_outputs_and_input_shape(models):
    r = load_runner(models["pb"], outputs=["dense/BiasAdd"], inputs={"x": [1, tm.H, tm.W, 3]})
    assert r.inputs[0].shape == (1, tm.H, tm.W, 3)
    assert [(o.name, o.shape) for o in r.outputs] == [("dense/BiasAdd", (None, tm.CLASSES))]


def test_onnx_runner_with_intermediate_outputs(models, batch):
    r = load_runner(models["onnx"])
    assert r.inputs[0].name == "x:0" and r.inputs[0].shape == ("unk__1", 3, tm.H, tm.W)
    assert [o.name for o in r.outputs] == ["ArgMax:0", "probs:0"]
    nchw = batch.transpose(0, 3, 1, 2)
    out = r.run({"x": nchw}, outputs=["dense/BiasAdd", "conv/Relu:0", "ArgMax:0"])
    np.testing.assert_allclose(out["dense/BiasAdd"], tm.reference_logits(batch), atol=1e-5)
    assert out["conv/Relu:0"].shape == (1, tm.C_MID, tm.H, tm.W) and out["conv/Relu:0"].min() >= 0
    r2 = load_runner(models["onnx"], outputs=["dense/BiasAdd:0"])
    assert [(o.name, o.dtype) for o in r2.outputs] == [("dense/BiasAdd:0", "float32")]
    assert list(r2.run({"x:0": nchw})) == ["dense/BiasAdd:0"]


def test_tflite_runner(models, batch):
    r = load_runner(models["tflite"])
    assert [(i.name, i.shape) for i in r.inputs] == [("x", (1, tm.H, tm.W, 3))]
    out = r.run({"x": batch.astype(np.float64)})  # float64 is cast to the model's float32
    np.testing.assert_allclose(out["dense/BiasAdd"], tm.reference_logits(batch), atol=1e-5)
    inner = load_runner(models["tflite"], outputs=["pool"]).run({"x": batch})["pool"]
    assert inner.shape == (1, tm.C_MID)


def test_wrong_names_suggest_close_ones(models, batch):
    with pytest.raises(TensorNameError, match="dense/BiasAdd"):
        load_runner(models["pb"], outputs=["dense/BiasAd"])
    with pytest.raises(TensorNameError, match="did you mean 'dense/BiasAdd:0'"):
        load_runner(models["onnx"], outputs=["dense/BiasAdd_1:0"])
    with pytest.raises(TensorNameError, match="'x'"):
        load_runner(models["tflite"]).run({"input": batch})


def test_bad_feeds_are_clear(models, batch):
    r = load_runner(models["tflite"])
    with pytest.raises(RunnerError, match="expects shape"):
        r.run({"x": batch[:, :8]})
    with pytest.raises(RunnerError, match="no value fed"):
        r.run({})


@pytest.mark.parametrize("kind", ["pb", "onnx", "tflite"])
def test_truncated_files_are_one_line_errors(models, kind):
    bad = tm.truncate(models[kind], models["dir"] / f"truncated.{kind}")
    with pytest.raises(ModelFileError) as info:
        load_runner(bad)
    text = str(info.value)
    assert str(bad) in text and "\n" not in text and "truncated or corrupt" in text


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="unknown model format"):
        load_runner(tmp_path / "model.h5")
    with pytest.raises(ModelFileError, match="no such"):
        load_runner(tmp_path / "model.onnx")
