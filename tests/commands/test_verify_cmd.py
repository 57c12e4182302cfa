"""`edgezoo verify` through cli.main: exit 0 on parity, 1 on a planted error, 2 on bad input."""

from __future__ import annotations

import json

import pytest

import tiny_models as tm
from edgezoo.cli import main


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("verify_cli")
    pb = tm.build_tf_pb(d / "m.pb")
    return {"pb": pb, "tflite": tm.build_tflite(pb, d / "m.tflite", ["dense/BiasAdd"]),
            "onnx": tm.build_onnx(d / "m.onnx"), "bad": tm.build_onnx(d / "bad.onnx", perturb=0.5), "dir": d}


def test_exact_conversion_passes(models, capsys):
    assert main(["verify", str(models["pb"]), str(models["tflite"]), "--random", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS parity classification") and "dense/BiasAdd: max_abs_error" in out
    assert "SQNR dB" in out and "chelsea" in out


def test_perturbed_weight_exits_1(models, capsys):
    assert main(["verify", str(models["onnx"]), str(models["bad"]), "--random", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("FAIL") and "smallest tolerances that would pass" in captured.out
    assert "verification failed: probs:0: max_abs_error" in captured.err


def test_json_and_tolerance_override(models, capsys):
    code = main(["verify", str(models["onnx"]), str(models["bad"]), "--json", "--random", "0",
                 "--tolerance", "max_abs_error=0.5", "--tolerance", "min_cosine=0.99"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["passed"] and data["metrics"]["tolerances"]["max_abs_error"] == 0.5
    assert data["metrics"]["outputs"]["probs:0"]["max_abs_error"] > 1e-3


@pytest.mark.parametrize("args,needle", [
    (["--tolerance", "max_abs_error"], "expected NAME=VALUE"),
    (["--tolerance", "max_abs_error=abc"], "not a number"),
    (["--tolerance", "maxabs=1"], "unknown tolerance"),
    (["--model", "resnet5"], "did you mean"),
])
def test_bad_arguments_exit_2(models, capsys, args, needle):
    assert main(["verify", str(models["onnx"]), str(models["bad"]), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("kind", ["pb", "onnx", "tflite"])
def test_truncated_file_exit_2(models, capsys, kind):
    bad = tm.truncate(models[kind], models["dir"] / f"broken.{kind}", 0.5)
    other = models["onnx"] if kind != "onnx" else models["pb"]
    assert main(["verify", str(other), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"broken.{kind}" in err and "truncated or corrupt" in err and err.count("\n") == 1


def test_wrong_output_name_suggests(models, capsys):
    assert main(["verify", str(models["pb"]), str(models["onnx"]), "--outputs", "prob:0"]) == 2
    assert "did you mean 'probs:0'" in capsys.readouterr().err


def test_detection_hook_is_clear(models, capsys):
    code = main(["verify", str(models["pb"]), str(models["onnx"]), "--task", "detection"])
    err = capsys.readouterr().err
    # Either the detection module exists (then these tiny classifiers are not detectors) or the hook says it's absent.
    assert code in (1, 2) and "Traceback" not in err


def test_a_stand_in_from_the_cache_or_a_stand_in_bundle_is_flagged(models, capsys, _isolated_cache):
    import shutil

    standin_dir = _isolated_cache / "standins" / "reduced" / "tiny-v1"
    standin_dir.mkdir(parents=True)
    original = shutil.copy(models["pb"], standin_dir / "m.pb")
    assert main(["verify", str(original), str(models["tflite"]), "--random", "0"]) == 0
    assert capsys.readouterr().out.startswith("STAND-IN: PASS parity")

    bundle = models["dir"] / "bundle"
    bundle.mkdir()
    converted = shutil.copy(models["tflite"], bundle / "model.tflite")
    (bundle / "manifest.json").write_text(json.dumps({"standin": True}))
    assert main(["verify", str(models["pb"]), str(converted), "--random", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["standin"] is True

    assert main(["verify", str(models["pb"]), str(models["tflite"]), "--random", "0"]) == 0
    assert capsys.readouterr().out.startswith("PASS parity")  # a plain file is not flagged
