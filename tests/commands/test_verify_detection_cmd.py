"""`edgezoo verify` on detectors through cli.main: the SSD-MobileNet ONNX route's bundle (REDUCED stand-in) checked
against the frozen graph with its prototxt, a planted prior error, and the detection tolerances."""

from __future__ import annotations

import dataclasses
import json

import pytest

from edgezoo.cli import main
from tests.ssd_helpers import reduced_onnx_bundle, reduced_source


@pytest.fixture(scope="module")
def files():
    bundle = reduced_onnx_bundle()
    return {"pb": str(reduced_source() / "frozen_inference_graph.pb"), "onnx": str(bundle / "model.onnx"),
            "prototxt": bundle / "meta_arch.prototxt"}


def _prototxt_args(files, prototxt=None) -> list[str]:
    return ["verify", files["pb"], files["onnx"], "--prototxt", str(prototxt or files["prototxt"]),
            "--model", "ssd-mobilenet", "--random", "0"]


def test_frozen_graph_vs_bundle_with_its_prototxt_passes(files, capsys):
    """uint8 NHWC image_tensor into the frozen graph, float NCHW into model.onnx: each fed in its own layout."""
    assert main(_prototxt_args(files) + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    checks = {c["name"]: c["value"] for c in data["checks"]}
    assert checks["original_detections"] >= 100  # 133 on the four photographs, seed-0 stand-in
    assert checks["matched_fraction_of_original"] == 1.0 and checks["matched_fraction_of_converted"] >= 0.99
    assert checks["max_box_error"] < 1e-3 and checks["max_score_error"] < 1e-3
    assert data["converted"] == "model.onnx + meta_arch.prototxt"
    assert data["metrics"]["detection"]["original"]["threshold_source"] == "pipeline.config beside the graph"

    assert main(_prototxt_args(files)) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("STAND-IN: PASS parity detection: model.onnx + meta_arch.prototxt vs ")


def test_planted_prior_size_in_the_prototxt_exits_1(files, tmp_path, capsys):
    from edgezoo.tidl.meta_arch.prototxt import load_meta_arch, save_meta_arch
    from edgezoo.verify.meta_arch import with_ssd

    meta = load_meta_arch(files["prototxt"])
    priors = list(meta.single_ssd().prior_box_param)
    assert priors[2].min_size == (105.0,)
    priors[2] = dataclasses.replace(priors[2], min_size=(120.0,))  # layer 1's boxes 15 px too large
    planted = save_meta_arch(with_ssd(meta, prior_box_param=tuple(priors)), tmp_path / "planted.prototxt")
    assert main(_prototxt_args(files, planted)) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("STAND-IN: FAIL")
    assert "verification failed: matched_fraction_of_original" in captured.err  # 0.62 measured


def test_detection_tolerances_are_accepted_and_applied(files, capsys):
    # Loosened: recorded in the report.
    assert main(_prototxt_args(files) + ["--json", "--tolerance", "match_iou=0.8",
                                          "--tolerance", "min_matched_fraction=0.9"]) == 0
    tol = json.loads(capsys.readouterr().out)["metrics"]["tolerances"]
    assert tol["match_iou"] == 0.8 and tol["min_matched_fraction"] == 0.9 and tol["max_box_error"] == 0.01
    # Tightened below the measured score error (about 2e-4): the override is what fails.
    assert main(_prototxt_args(files) + ["--tolerance", "max_score_error=1e-6"]) == 1
    assert "verification failed: max_score_error" in capsys.readouterr().err


def test_task_detection_two_models_accepts_detection_tolerances(files, capsys):
    """Without a prototxt: the frozen graph vs model.onnx's own ONNX Runtime tail, detection names allowed."""
    code = main(["verify", files["pb"], files["onnx"], "--task", "detection", "--random", "0", "--json",
                 "--tolerance", "match_iou=0.8", "--tolerance", "max_box_error=0.005"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["task"] == "detection"
    assert data["metrics"]["tolerances"]["match_iou"] == 0.8 and data["metrics"]["tolerances"]["max_box_error"] == 0.005


@pytest.mark.parametrize("order", ["one model", "swapped"])
def test_prototxt_needs_the_onnx_model_as_converted(files, capsys, order):
    models = [files["pb"]] if order == "one model" else [files["onnx"], files["pb"]]
    assert main(["verify", *models, "--prototxt", str(files["prototxt"])]) == 2
    err = capsys.readouterr().err
    assert "frozen_inference_graph.pb: the prototxt decodes an ONNX model cut at the SSD heads, not a .pb file" in err
    assert "verify ORIGINAL model.onnx --prototxt" in err and err.count("\n") == 1


@pytest.mark.parametrize("extra,needle", [
    (["--prototxt", "PROTOTXT", "--tolerance", "match_io=0.8"],
     "unknown tolerance 'match_io' for detection parity -- did you mean 'match_iou'"),
    (["--prototxt", "PROTOTXT", "--tolerance", "max_abs_error=0.1"], "max_abs_error is a classification/tensor"),
    (["--task", "detection", "--tolerance", "max_box_eror=0.1"], "did you mean 'max_box_error'"),
    (["--task", "detection", "--tolerance", "min_cosine=0.9"], "min_cosine is a classification/tensor tolerance"),
    (["--task", "classification", "--tolerance", "match_iou=0.8"], "match_iou is a detection tolerance"),
    (["--prototxt", "PROTOTXT", "--task", "tensors"], "--prototxt checks detections, not --task tensors"),
])
def test_tolerance_names_are_checked_per_task(files, capsys, extra, needle):
    args = [str(files["prototxt"]) if a == "PROTOTXT" else a for a in extra]
    assert main(["verify", files["pb"], files["onnx"], *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
