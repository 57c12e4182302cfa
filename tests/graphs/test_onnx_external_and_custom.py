"""ONNX models beyond the plain single file: weights kept as external data beside the model (read, confined to the
model's folder) and operators of a custom domain that ONNX Runtime does not have (one line, exit 2)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tiny_models as tm
from edgezoo.cli import main
from edgezoo.core.errors import ModelFileError
from edgezoo.graphs import onnx_model
from edgezoo.graphs.runners import load_runner


def _external(folder, location="weights.bin"):
    """The tiny classifier saved with every initializer in one external data file, then pointed at `location`
    (onnx.save itself refuses to write a location with '..')."""
    inline = tm.build_onnx(folder / "inline.onnx")
    path = folder / "model.onnx"
    onnx.save(onnx.load(str(inline)), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    if location != "weights.bin":
        model = onnx.load(str(path), load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        path.write_bytes(model.SerializeToString())
        if location.startswith("../"):
            (folder / "weights.bin").rename(folder.parent / "weights.bin")
    return inline, path


def test_external_data_beside_the_model_is_read(tmp_path, capsys):
    inline, path = _external(tmp_path)
    weights = (tmp_path / "weights.bin").stat().st_size
    assert path.stat().st_size + weights // 2 < inline.stat().st_size  # the weights are not in model.onnx
    x = np.random.default_rng(5).normal(0, 1, (1, 3, tm.H, tm.W)).astype(np.float32)
    got = load_runner(path).run({"x:0": x})
    want = load_runner(inline).run({"x:0": x})
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    assert main(["verify", str(inline), str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("location, says", [
    ("../weights.bin", "outside the model's folder: refused"),
    ("missing.bin", "which is not a file in"),
])
def test_external_data_outside_the_folder_or_missing(tmp_path, location, says):
    folder = tmp_path / "m"
    folder.mkdir()
    _, path = _external(folder, location)
    with pytest.raises(ModelFileError, match=says) as info:
        onnx_model.load(path)
    assert "\n" not in str(info.value)


def _custom_domain(path):
    node = helper.make_node("MyOp", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                      helper.make_opsetid("com.example", 1)]), str(path))
    return path


@pytest.mark.parametrize("argv", [
    ["verify", "{m}", "{m}"],
    ["export", "--graph", "{m}", "--to", "onnx", "--inputs", "x:1x3x8x8", "--outputs", "y", "--out", "{o}"],
], ids=["verify", "export"])
def test_custom_domain_operator_is_one_line(tmp_path, capsys, argv):
    model = _custom_domain(tmp_path / "custom.onnx")
    code = main([a.format(m=model, o=tmp_path / "out") for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "com.example" in err or "custom domain" in err, err
    assert not (tmp_path / "out").exists()
