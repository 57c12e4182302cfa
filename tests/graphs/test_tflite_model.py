from __future__ import annotations

import pytest

import tiny_models as tm
from edgezoo.errors import ModelFileError
from edgezoo.graphs import tflite_model


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    d = tmp_path_factory.mktemp("tfl")
    return tm.build_tflite(tm.build_tf_pb(d / "m.pb"), d / "m.tflite", ["probs"])


def test_ops_and_options(path):
    g = tflite_model.read_graph(path)
    assert g.op_names() == ["CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    conv = g.ops[0]
    assert conv.options["strideH"] == 1 and conv.options["fusedActivationFunction"] == 1  # RELU fused
    weights = g.tensors[0][conv.inputs[1]]
    assert weights.constant is not None and weights.constant.shape == (tm.C_MID, 3, 3, 3)
    assert g.ops[-1].name(g) == "probs"


def test_details(path):
    interp = tflite_model.load_interpreter(path)
    assert [(i.name, i.shape, i.dtype) for i in tflite_model.inputs(interp)] == [("x", (1, tm.H, tm.W, 3), "float32")]
    assert [o.name for o in tflite_model.outputs(interp)] == ["probs"]


def test_not_a_tflite(tmp_path, path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"PK\x03\x04 not a flatbuffer")
    with pytest.raises(ModelFileError, match="no TFL3"):
        tflite_model.read_graph(junk)
    with pytest.raises(ModelFileError, match="truncated"):
        tflite_model.op_names(tm.truncate(path, tmp_path / "cut.tflite", 0.9))
