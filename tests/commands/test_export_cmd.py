"""`edgezoo export` on the command line: zoo models on stand-ins, the generic --graph form on models built here
(with names unlike the MLPerf ones), and the exit codes (0 / 1 parity failed / 2 bad input, nothing written)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgezoo
from edgezoo.cli import main


def _tf_model(dest: Path) -> Path:
    """image_in [N,48,48,3] -> stem conv -> relu -> pool -> classifier/logits [N,7] -> classifier/prob (+ aux head)."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 48, 48, 3], name="image_in")
        with tf.name_scope("backbone"):
            k = tf.constant((rng.standard_normal((3, 3, 3, 16)) * np.sqrt(2 / 27)).astype(np.float32), name="k")
            y = tf.nn.relu(tf.nn.conv2d(x, k, 2, "SAME", name="stem_conv"), name="stem_act")
            feat = tf.reduce_mean(y, [1, 2], name="gap")
        with tf.name_scope("classifier"):
            w = tf.constant((rng.standard_normal((16, 7)) * 2).astype(np.float32), name="w")
            logits = tf.nn.bias_add(tf.matmul(feat, w), tf.constant(np.zeros(7, np.float32)), name="logits")
            tf.nn.softmax(logits, name="prob")
        with tf.name_scope("aux"):
            tf.identity(feat * 2.0, name="embedding")
    dest.write_bytes(graph.as_graph_def().SerializeToString())
    return dest


def _onnx_model(dest: Path) -> Path:
    """pixels [batch,3,32,32] -> Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm 'head_scores' -> Softmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), "conv_w"),
             numpy_helper.from_array((rng.standard_normal((5, 8))).astype(np.float32), "fc_w"),
             numpy_helper.from_array(np.zeros(5, np.float32), "fc_b")]
    nodes = [helper.make_node("Conv", ["pixels", "conv_w"], ["feat"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["feat"], ["feat_act"]),
             helper.make_node("GlobalAveragePool", ["feat_act"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["head_scores"], transB=1),
             helper.make_node("Softmax", ["head_scores"], ["head_prob"], axis=1)]
    graph = helper.make_graph(nodes, "user_net",
                              [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, 32, 32])],
                              [helper.make_tensor_value_info("head_prob", TensorProto.FLOAT, ["batch", 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, dest)
    return dest


@pytest.fixture(scope="module")
def user_pb(tmp_path_factory):
    return _tf_model(tmp_path_factory.mktemp("user") / "tiny_net.pb")


@pytest.mark.parametrize("target", ["tflite", "onnx"])
def test_generic_graph_export_pb(user_pb, tmp_path, capsys, target):
    from edgezoo.graphs.runners import load_runner

    code = main(["export", "--graph", str(user_pb), "--inputs", "image_in:1x48x48x3",
                 "--outputs", "classifier/logits,aux/embedding", "--to", target, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    bundle = tmp_path / "tiny_net" / target
    model = bundle / f"model.{target}"
    assert model.is_file() and "PASS" in out and "STAND-IN" not in out
    runner = load_runner(model)
    shapes = sorted(tuple(o.shape) for o in runner.outputs)
    assert shapes == [(1, 7), (1, 16)]  # exactly the two requested outputs, batch 1
    verify = json.loads((bundle / "verify.json").read_text())
    assert verify["standin"] is False and verify["passed"] and verify["task"] == "tensors"
    assert len(verify["metrics"]["outputs"]) == 2
    assert all(s["max_abs_error"] < 1e-4 and s["cosine"] > 0.9999 for s in verify["metrics"]["outputs"].values())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["standin"] is False and manifest["sources"][0]["file"] == "tiny_net.pb"
    assert manifest["recipe"]["params"]["inputs"] == {"image_in": [1, 48, 48, 3]}


def test_generic_graph_export_onnx_fix_and_cut(tmp_path, capsys):
    from edgezoo.graphs import onnx_model

    src = _onnx_model(tmp_path / "user_net.onnx")
    code = main(["export", "--graph", str(src), "--inputs", "pixels:1x3x32x32", "--outputs", "head_scores",
                 "--to", "onnx", "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr()
    model = onnx_model.load(tmp_path / "out" / "user_net" / "onnx" / "model.onnx")
    assert onnx_model.output_names(model) == ["head_scores"]
    assert onnx_model.info(onnx_model.graph_inputs(model)[0]).shape == (1, 3, 32, 32)
    assert "Softmax" not in {n.op_type for n in model.graph.node}


def test_wrong_output_name_exit_2_with_suggestion_nothing_written(user_pb, tmp_path, capsys):
    code = main(["export", "--graph", str(user_pb), "--inputs", "image_in:1x48x48x3",
                 "--outputs", "classifier/logit", "--to", "tflite", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "classifier/logit" in err and "did you mean 'classifier/logits'" in err
    assert list(tmp_path.iterdir()) == []


def test_wrong_input_name_exit_2_with_suggestion(user_pb, tmp_path, capsys):
    code = main(["export", "--graph", str(user_pb), "--inputs", "image:1x48x48x3",
                 "--outputs", "classifier/logits", "--to", "onnx", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no input named 'image'" in err and "image_in" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,message", [
    (["--inputs", "image_in:1xAx3"], "expected NAME:DIMxDIM"),
    (["--inputs", "image_in:1x48x48x3", "--tolerance", "max_abs_error"], "expected NAME=VALUE"),
    (["--inputs", "image_in:1x48x48x3", "--tolerance", "max_abs_error=big"], "is not a number"),
])
def test_bad_arguments_exit_2(user_pb, tmp_path, capsys, argv, message):
    code = main(["export", "--graph", str(user_pb), "--outputs", "classifier/logits", "--to", "tflite",
                 "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_corrupt_graph_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "broken.pb"
    bad.write_bytes(b"\x0a\x05hello\x12\xff\xff")
    code = main(["export", "--graph", str(bad), "--inputs", "x:1x4", "--outputs", "y", "--to", "tflite",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "broken.pb" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_model_without_a_recipe_for_the_target_is_a_clear_error(capsys, tmp_path):
    code = main(["export", "ssd-resnet34-1200", "--to", "tflite", "--standin", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no recipe for tflite" in err and "onnx" in err


def test_unknown_model_and_missing_model_exit_2(capsys):
    assert main(["export", "resnet5", "--to", "tflite"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["export", "--to", "tflite"]) == 2
    assert "no model given" in capsys.readouterr().err


def test_zoo_model_on_standin_first_line_says_standin_and_parity_failure_exits_1(tmp_path, capsys):
    argv = ["export", "resnet50", "--to", "tflite", "--standin", "--standin-variant", "reduced", "--offline",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("STAND-IN: PASS resnet50-v1.5 -> tflite")
    assert "resnet_model/dense/BiasAdd" in out and "PASS" in out.splitlines()[-2]
    assert main(argv + ["--tolerance", "max_abs_error=0"]) == 1  # in range, but no TFLite conversion is bit-exact
    out = capsys.readouterr().out
    assert "FAIL" in out and "tflite.failed" in out
    assert (tmp_path / "resnet50-v1.5" / "tflite" / "model.tflite").is_file()  # the good bundle survived


def test_demo_reduced_exports_the_classification_models(tmp_path, capsys):
    """`make demo` in small: STAND-IN first, one row per card target, the classification rows all PASS."""
    code = main(["demo", "--standin-variant", "reduced", "--out", str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("STAND-IN: edgezoo demo")
    rows = {tuple(line.split()[:2]): line for line in out if line.split()[:1] and line.split()[0] in
            ("mobilenet-v1", "resnet50-v1.5", "ssd-mobilenet-v1", "ssd-resnet34-1200")}
    for key in (("mobilenet-v1", "tflite"), ("mobilenet-v1", "onnx"), ("resnet50-v1.5", "tflite"),
                ("resnet50-v1.5", "onnx")):
        assert rows[key].rstrip().endswith("PASS"), rows[key]
    assert ("ssd-resnet34-1200", "onnx") in rows and ("ssd-mobilenet-v1", "tflite") in rows
    failed = [line for line in rows.values() if line.rstrip().endswith("FAIL")]
    assert code == (1 if failed else 0)
    assert (tmp_path / "resnet50-v1.5" / "onnx" / "model.onnx").is_file()
    # the quantize part: one quantization (MobileNet, TIDL preview, the stand-in dataset) in the summary
    assert any(line.startswith("tidl-preview (scale type 0)") for line in out)
    assert (tmp_path / "mobilenet-v1" / "tidl-preview" / "tidl_preview.onnx").is_file()


def test_params_reach_the_recipe_typed_and_the_manifest_with_defaults(tmp_path, capsys):
    from edgezoo.graphs import onnx_model

    code = main(["export", "resnet50", "--to", "onnx", "--standin", "--standin-variant", "reduced", "--offline",
                 "--out", str(tmp_path), "--param", "simplify=false", "--param", "batch=4"])
    assert code == 0, capsys.readouterr().err
    bundle = tmp_path / "resnet50-v1.5" / "onnx"
    params = json.loads((bundle / "manifest.json").read_text())["recipe"]["params"]
    assert params["simplify"] is False and params["simplified"] is False  # the YAML-typed value was honoured
    assert params["batch"] == 4 and params["outputs"] == ["resnet_model/dense/BiasAdd:0"]  # the card's still there
    model = onnx_model.load(bundle / "model.onnx")
    assert onnx_model.info(onnx_model.graph_inputs(model)[0]).shape == (4, 3, 224, 224)


def test_misspelt_tolerance_is_an_error_not_ignored(tmp_path, capsys):
    code = main(["export", "resnet50", "--to", "tflite", "--standin", "--out", str(tmp_path),
                 "--tolerance", "max_abs_eror=1"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown tolerance 'max_abs_eror'" in err and "max_abs_error" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("given,needle", [
    ("max_abs_error=1", "unknown tolerance 'max_abs_error'"),  # a classification name: never read by SSD parity
    ("match_io=0.8", "did you mean 'match_iou'"),
])
def test_tolerance_names_follow_the_cards_task(tmp_path, capsys, given, needle):
    code = main(["export", "ssd-mobilenet", "--to", "onnx", "--standin", "--standin-variant", "reduced",
                 "--out", str(tmp_path), "--tolerance", given])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "match_iou" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------- options
def _refused(argv: list[str], tmp_path: Path, capsys, cache: Path) -> str:
    """Run an export that must be refused before any work: exit 2, one line, no out/ folder, no stand-in built."""
    out = tmp_path / "out"
    code = main(["export", *argv, "--standin", "--standin-variant", "reduced", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()  # no bundle, no .failed, no staging folder
    assert not any(p.is_file() for p in cache.rglob("*"))  # the recipe never started: no stand-in was built
    return err


@pytest.mark.parametrize("argv,needles", [
    (["resnet50", "--to", "onnx", "--param", "batch=[1,"], ["--param batch", "expected integer in [1, 1024]", "'[1,'"]),
    (["resnet50", "--to", "onnx", "--param", "batch=abc"], ["--param batch", "expected integer in [1, 1024]", "'abc'"]),
    (["resnet50", "--to", "onnx", "--param", "batch=-3"], ["--param batch: -3 is out of range", "[1, 1024]"]),
    (["resnet50", "--to", "onnx", "--param", "batch=2.5"], ["--param batch", "got 2.5"]),
    (["resnet50", "--to", "onnx", "--param", "foo=1"],
     ["unknown parameter 'foo'", "batch (integer in [1, 1024] or none)", "simplify (true|false)", "outputs"]),
    (["resnet50", "--to", "onnx", "--param", "simplifi=true"], ["unknown parameter 'simplifi'",
                                                                "did you mean 'simplify'"]),
    (["resnet50", "--to", "onnx", "--param", "simplify=banana"], ["--param simplify", "true|false", "'banana'"]),
    (["resnet50", "--to", "onnx", "--param", "cut=where"], ["--param cut", "auto"]),
    (["resnet50", "--to", "tflite", "--param", "inputs={input_tensor: [1, -224, 224, 3]}"],
     ["--param inputs: input input_tensor", "[1, 2147483647]"]),
    (["mobilenet", "--to", "tflite", "--param", "reference_format=tflite"], ["reference_format", "tf | onnx"]),
    (["resnet50", "--to", "onnx", "--max-detections", "10"],
     ["--max-detections applies to ssd-mobilenet-v1 (tflite), not to resnet50-v1.5 (onnx)"]),
    (["ssd-mobilenet", "--to", "onnx", "--nms", "fast"], ["--nms applies to ssd-mobilenet-v1 (tflite), not to "
                                                          "ssd-mobilenet-v1 (onnx)"]),
    (["ssd-mobilenet", "--to", "tflite", "--max-detections", "1000000000"],
     ["--max-detections: 1000000000 is out of range", "[1, 100000]", "allocated"]),
    (["ssd-mobilenet", "--to", "tflite", "--max-detections", "0"], ["--max-detections: 0 is out of range"]),
    (["ssd-mobilenet", "--to", "tflite", "--max-detections", "many"], ["--max-detections: expected integer"]),
    (["ssd-mobilenet", "--to", "tflite", "--max-detections", "5000", "--param", "max_classes_per_detection=90"],
     ["450,000 output slots", "at most 100,000"]),
    (["ssd-mobilenet", "--to", "tflite", "--nms", "greedy"], ["--nms: expected one of regular | fast, got 'greedy'"]),
    (["ssd-mobilenet", "--to", "tflite", "--score-threshold", "nan"], ["--score-threshold", "[0, 1]"]),
    (["ssd-mobilenet", "--to", "tflite", "--iou-threshold", "0"], ["--iou-threshold: 0 is out of range", "(0, 1]"]),
    (["ssd-mobilenet", "--to", "onnx", "--keep-top-k", "0"], ["--keep-top-k: 0 is out of range", "[1, 100000]"]),
    (["ssd-mobilenet", "--to", "tflite", "--max-detections", "10", "--param", "max_detections=20"],
     ["--max-detections and --param max_detections both given"]),
    (["ssd-resnet34", "--to", "onnx", "--confidence-threshold", "1"], ["--confidence-threshold", "[0, 1)"]),
    (["ssd-resnet34", "--to", "onnx", "--top-k", "-1"], ["--top-k: -1 is out of range"]),
    (["ssd-resnet34", "--to", "onnx", "--param", "fold_clamped_priors=maybe"], ["fold_clamped_priors", "true|false"]),
    (["ssd-resnet34", "--to", "onnx", "--param", "scales=[84, 180]"], ["scales: expected 7 values"]),
    (["ssd-resnet34", "--to", "onnx", "--param", "input_size=[100000, 100000]"], ["input_size", "[1, 4096]", "192 MiB"]),
    (["--all", "--to", "onnx", "--max-detections", "10"],
     ["--max-detections: no recipe of the exported models takes it", "ssd-mobilenet-v1 (tflite)"]),
    (["--all", "--to", "onnx", "--param", "foo=1"], ["--param foo: no recipe of the exported models takes it"]),
    (["--all", "--to", "onnx", "--param", "batch=0"], ["mobilenet-v1", "--param batch: 0 is out of range"]),
])
def test_invalid_recipe_options_exit_2_before_any_work(argv, needles, tmp_path, capsys, _isolated_cache):
    err = _refused(argv, tmp_path, capsys, _isolated_cache)
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize("given,needles", [
    ("max_abs_error=-1", ["tolerance max_abs_error=-1 is out of range", "finite number >= 0"]),
    ("max_abs_error=nan", ["tolerance max_abs_error=nan is out of range"]),
    ("max_abs_error=inf", ["tolerance max_abs_error=inf is out of range"]),
    ("min_cosine=2", ["tolerance min_cosine=2 is out of range", "[-1, 1]"]),
    ("min_top1_agreement=1.5", ["min_top1_agreement must be a number in [0, 1]"]),
])
def test_tolerances_out_of_range_exit_2_before_any_work(given, needles, tmp_path, capsys, _isolated_cache):
    err = _refused(["resnet50", "--to", "tflite", "--tolerance", given], tmp_path, capsys, _isolated_cache)
    for needle in needles:
        assert needle in err, err


def test_detection_tolerance_range(tmp_path, capsys, _isolated_cache):
    err = _refused(["ssd-mobilenet", "--to", "onnx", "--tolerance", "match_iou=0"], tmp_path, capsys,
                   _isolated_cache)
    assert "match_iou must be a number in (0, 1]" in err


@pytest.mark.parametrize("argv,needles", [
    (["--inputs", "image_in:1x100000x100000x3"], ["--inputs image_in: shape 1x100000x100000x3",
                                                  "30,000,000,000 elements", "at most 67,108,864", "256 MiB"]),
    (["--inputs", "image_in:1x4000x4000x3,other:1x4000x4000x3"], ["96,000,000 elements together", "256 MiB"]),
    (["--inputs", "image_in:1x48x48x3", "--param", "opset=99"], ["--param opset: 99 is out of range", "[9, 18]"]),
    (["--inputs", "image_in:1x48x48x3", "--param", "nchw=maybe"], ["--param nchw", "true|false"]),
    (["--inputs", "image_in:1x48x48x3", "--param", "simplify=true"], ["unknown parameter 'simplify'",
                                                                      "opset (integer in [9, 18])"]),
    (["--inputs", "image_in:1x48x48x3", "--max-detections", "5"], ["--max-detections applies to ssd-mobilenet-v1",
                                                                   "not to --graph"]),
    (["--inputs", "image_in:1x48x48x3", "--tolerance", "min_cosine=-2"], ["min_cosine=-2 is out of range"]),
    (["--inputs", "image_in:1x48x48x3", "--tolerance", "match_iou=0.5"], ["unknown tolerance 'match_iou'"]),
])
def test_graph_options_exit_2_before_any_work(user_pb, argv, needles, tmp_path, capsys):
    code = main(["export", "--graph", str(user_pb), "--outputs", "classifier/logits", "--to", "onnx",
                 "--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert not (tmp_path / "out").exists()


def test_graph_params_reach_the_conversion_typed(user_pb, tmp_path, capsys):
    from edgezoo.graphs import onnx_model

    code = main(["export", "--graph", str(user_pb), "--inputs", "image_in:1x48x48x3", "--outputs",
                 "classifier/logits", "--to", "onnx", "--out", str(tmp_path), "--param", "opset=11",
                 "--param", "nchw=true"])
    assert code == 0, capsys.readouterr().err
    bundle = tmp_path / "tiny_net" / "onnx"
    model = onnx_model.load(bundle / "model.onnx")
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {11}
    assert onnx_model.info(onnx_model.graph_inputs(model)[0]).shape == (1, 3, 48, 48)  # NCHW as asked
    params = json.loads((bundle / "manifest.json").read_text())["recipe"]["params"]
    assert params["opset"] == 11 and params["nchw"] is True


def test_recipe_flags_are_declared_by_some_recipe():
    """Every export flag is a parameter some recipe declares (the flags are shortcuts, not a second list)."""
    from edgezoo.commands.export_cmd import RECIPE_OPTIONS
    from edgezoo.recipes import get_recipe, recipe_names

    declared = {p.name for name in recipe_names() for p in get_recipe(name).params}
    assert {name for name, _ in RECIPE_OPTIONS} <= declared


def test_info_lists_the_recipe_parameters(capsys):
    assert main(["info", "ssd-mobilenet"]) == 0
    out = capsys.readouterr().out
    assert "recipe parameters" in out
    line = next(line for line in out.splitlines() if line.split()[:1] == ["max_detections"])
    assert "integer" in line and "[1, 100000]" in line and "4000 (card)" in line
    assert main(["info", "resnet50", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    batch = next(p for p in data["recipe_parameters"]["onnx"]["params"] if p["name"] == "batch")
    assert batch["type"] == "integer" and batch["range"] == "[1, 1024] or none" and batch["default"] == "1 (card)"
def _export_stuck_on_stdout(argv: list[str], stderr_path: Path) -> tuple[Any, int]:
    """Start `edgezoo export ...` in a real process whose stdout is a full pipe: its first print (the report, which
    comes after the first bundle is committed) blocks until the test reads. A SIGINT sent then lands exactly after
    "exported" and before the report is out. Returns the process and the pipe's read end."""
    read_end, write_end = os.pipe()
    size = fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    os.write(write_end, b"x" * size)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(Path(edgezoo.__file__).parents[1])}
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "edgezoo", "export", *argv], stdout=write_end, stderr=err,
                                env=env)
    os.close(write_end)
    return proc, read_end


def _interrupt_once_committed(proc: Any, read_end: int, bundle: Path, stderr_path: Path) -> None:
    """Wait for `bundle` to be in place, send SIGINT, let the process finish (reading its stdout)."""
    deadline = time.monotonic() + 300
    while not (bundle / "manifest.json").is_file():
        assert proc.poll() is None, stderr_path.read_text()
        assert time.monotonic() < deadline, "the export did not finish in time"
        time.sleep(0.05)
    # From here on the process cannot finish: at the latest its report blocks on the full pipe. Wherever the signal
    # lands now, it lands after the commit.
    proc.send_signal(signal.SIGINT)
    while os.read(read_end, 1 << 16):
        pass
    os.close(read_end)
    proc.wait(timeout=60)


def _hidden_leftovers(out: Path) -> list[str]:
    return sorted(str(p) for p in out.rglob(".*") if p.name != ".edgezoo-output.json")


@pytest.mark.parametrize("models,code,message", [
    (["resnet50"], 0, "interrupted after the export had completed; the result stands: {first}"),
    (["resnet50", "mobilenet-v1"], 130, "interrupted after 1 of 2 exports; the completed bundles are kept: {first}"),
], ids=["single-export-stands", "second-model-interrupted"])
def test_sigint_after_the_first_bundle_is_committed(tmp_path, models, code, message):
    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    proc, read_end = _export_stuck_on_stdout([*models, "--to", "tflite", "--standin", "--standin-variant",
                                              "reduced", "--offline", "--out", str(out)], log)
    first = out / "resnet50-v1.5" / "tflite"
    _interrupt_once_committed(proc, read_end, first, log)
    assert proc.returncode == code, log.read_text()
    assert log.read_text().splitlines()[-1] == "edgezoo: " + message.format(first=first)
    assert json.loads((first / "verify.json").read_text())["passed"] is True
    assert not (out / "mobilenet-v1").exists() and _hidden_leftovers(out) == []
