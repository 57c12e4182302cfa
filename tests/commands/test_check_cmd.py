"""`edgezoo check FILE --target tidl` through cli.main."""

from __future__ import annotations

import json

import tiny_models as tm
from edgezoo.cli import main


def test_check_reports_cut_and_exits_0(tmp_path, capsys):
    path = tm.build_onnx(tmp_path / "m.onnx")
    assert main(["check", str(path), "--target", "tidl"]) == 0
    out = capsys.readouterr().out
    assert "2 node(s) TIDL cannot run" in out and "proposed cut" in out and "dense/BiasAdd:0" in out
    assert main(["check", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cut"] == ["dense/BiasAdd:0"] and {f["op"] for f in data["unsupported"]} == {"Softmax", "ArgMax"}


def test_check_bad_files_exit_2(tmp_path, capsys):
    path = tm.truncate(tm.build_onnx(tmp_path / "m.onnx"), tmp_path / "half.onnx", 0.5)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "half.onnx" in err and err.count("\n") == 1
    (tmp_path / "g.pb").write_bytes(b"x")
    assert main(["check", str(tmp_path / "g.pb")]) == 2
    assert ".onnx and .tflite" in capsys.readouterr().err
