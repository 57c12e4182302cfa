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


@pytest.mark.parametrize("args,needles", [
    (["--random", "-1"], ["--random -1: expected 0..1024 images"]),
    (["--random", "100000000000"], ["--random 100000000000: expected 0..1024 images"]),
    (["--seed", "-1"], ["--seed -1", "[0, 2^64 - 1]"]),
    (["--tolerance", "max_abs_error=-1"], ["tolerance max_abs_error=-1 is out of range", "finite number >= 0"]),
    (["--tolerance", "max_abs_error=nan"], ["tolerance max_abs_error=nan is out of range"]),
    (["--tolerance", "min_cosine=2"], ["tolerance min_cosine=2 is out of range", "[-1, 1]"]),
    (["--tolerance", "match_iou=1.5", "--task", "detection"], ["match_iou must be a number in (0, 1]"]),
])
def test_out_of_range_options_exit_2_before_any_model_runs(models, capsys, args, needles):
    """On an exact pair: a bad limit must be exit 2, never 'parity FAILED' (exit 1) nor a run of 10^11 images."""
    code = main(["verify", str(models["pb"]), str(models["tflite"]), *args])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    assert captured.out == ""  # refused before any report
    for needle in needles:
        assert needle in captured.err


def _big_input_onnx(dest, side: int):
    """An ONNX model of one Relu on a [1, 3, side, side] float input: tiny on disk, big per verification input."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "big_input",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, side, side])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, side, side])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, dest)
    return dest


def test_feed_memory_budget_names_the_size(tmp_path, capsys):
    """2048 x 2048 x 3 float32 is 48 MiB per image per model: the photographs + 30 random images need 3,264 MiB."""
    from edgezoo.datasets.images import PHOTOGRAPHS
    from edgezoo.verify.feeds import FEED_BUDGET_BYTES

    model = _big_input_onnx(tmp_path / "big.onnx", 2048)
    images = len(PHOTOGRAPHS) + 30
    need = images * 2 * (3 * 2048 * 2048 * 4)
    assert need > FEED_BUDGET_BYTES
    code = main(["verify", str(model), str(model), "--random", "30"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{need / 2**20:,.0f} MiB of inputs ({images} images x 96.00 MiB" in err
    assert f"budget is {FEED_BUDGET_BYTES / 2**20:,.0f} MiB" in err and "fewer --random" in err
    assert main(["verify", str(model), str(model), "--random", "0"]) == 0  # the photographs alone fit
