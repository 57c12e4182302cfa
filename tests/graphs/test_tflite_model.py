from __future__ import annotations

import pytest

import tiny_models as tm
from edgezoo.core.errors import ModelFileError
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


def test_a_file_edgezoo_just_wrote_says_to_change_the_options_not_to_fetch_again(tmp_path):
    """The same unloadable bytes: a user's file -> check it / export it again (nothing to fetch); our own output ->
    change the options; a file in the download cache -> fetch it again."""
    from edgezoo.graphs import own_outputs

    work = tmp_path / "work"
    work.mkdir()
    for folder in (tmp_path, work):
        (folder / "model.tflite").write_bytes(b"\x00\x00\x00\x00TFL3" + b"\xff" * 64)
    with own_outputs(work):
        with pytest.raises(ModelFileError) as ours:
            tflite_model.load_interpreter(work / "model.tflite")
        with pytest.raises(ModelFileError) as theirs:
            tflite_model.load_interpreter(tmp_path / "model.tflite")
    assert "edgezoo just converted cannot be loaded" in str(ours.value)
    assert "--max-detections" in ours.value.hint and "fetch" not in str(ours.value)
    assert "export or copy it again" in theirs.value.hint and "fetch" not in theirs.value.hint
    with pytest.raises(ModelFileError) as after:  # outside the block, the same file is an ordinary corrupt file
        tflite_model.load_interpreter(work / "model.tflite")
    assert "export or copy it again" in after.value.hint


def test_a_corrupt_file_in_the_download_cache_is_fetched_again(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "files" / "model.tflite"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\x00\x00\x00\x00TFL3" + b"\xff" * 64)
    with pytest.raises(ModelFileError) as err:
        tflite_model.load_interpreter(cached)
    assert err.value.hint == "delete it and fetch it again"
