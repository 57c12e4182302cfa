"""`edgezoo export` on the command line: zoo models on stand-ins, the generic --graph form on models built here
(with names unlike the MLPerf ones), and the exit codes (0 / 1 parity failed / 2 bad input, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

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
    from edgezoo.runners import load_runner

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
    (["--inputs", "image_in:1x48x48x3", "--tolerance", "max_abs_error"], "expected KEY=VALUE"),
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
    assert main(argv + ["--tolerance", "min_cosine=1.5"]) == 1
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
    # issue 11: one quantization (MobileNet, TIDL preview, the stand-in dataset) in the summary
    assert any(line.startswith("tidl-preview (scale type 0)") for line in out)
    assert (tmp_path / "mobilenet-v1" / "tidl-preview" / "tidl_preview.onnx").is_file()


def test_params_and_recipe_options_reach_the_recipe_and_the_manifest(tmp_path, capsys):
    code = main(["export", "resnet50", "--to", "onnx", "--standin", "--standin-variant", "reduced", "--offline",
                 "--out", str(tmp_path), "--param", "simplify=false", "--top-k", "50", "--nms", "fast"])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "resnet50-v1.5" / "onnx" / "manifest.json").read_text())
    params = manifest["recipe"]["params"]
    assert params["simplify"] is False and params["simplified"] is False  # the YAML-typed value was honoured
    assert params["top_k"] == 50 and params["nms"] == "fast"
    assert params["outputs"] == ["resnet_model/dense/BiasAdd:0"]  # the card's params are still there


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
