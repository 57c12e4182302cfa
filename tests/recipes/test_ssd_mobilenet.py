"""Recipe 'ssd-tf-to-tflite-postprocess' on the REDUCED stand-in: the op, its attributes, its outputs, parity."""

from __future__ import annotations

import numpy as np
import pytest

from edgezoo.core.errors import RecipeError
from edgezoo.ssd import ssd_surgery
from tests.ssd_helpers import planted_tflite, recipe_input, reduced_source, reduced_tflite_export

RECIPE = "ssd-tf-to-tflite-postprocess"


@pytest.fixture(scope="module")
def exported():
    return reduced_tflite_export()


def test_exactly_one_postprocess_op_with_the_requested_attributes(exported):
    ops = ssd_surgery.read_postprocess_ops(exported.model)
    assert len(ops) == 1
    attrs = ops[0]["attributes"]
    assert attrs["max_detections"] == 4000 and attrs["use_regular_nms"] is True
    assert attrs["detections_per_class"] == 100 and attrs["max_classes_per_detection"] == 1
    assert attrs["num_classes"] == 90
    assert attrs["nms_score_threshold"] == pytest.approx(0.3) and attrs["nms_iou_threshold"] == pytest.approx(0.6)
    assert (attrs["y_scale"], attrs["x_scale"], attrs["h_scale"], attrs["w_scale"]) == (10, 10, 5, 5)
    assert ops[0]["outputs"] == list(ssd_surgery.POSTPROCESS_OUTPUTS)
    assert ops[0]["inputs"] == [ssd_surgery.BOX_OUTPUT, ssd_surgery.CLASS_OUTPUT, ssd_surgery.ANCHORS_NAME]


def test_model_interface_and_bundle_fields(exported):
    from edgezoo.graphs import tflite_model

    interp = tflite_model.load_interpreter(exported.model)
    (inp,) = tflite_model.inputs(interp)
    assert inp.name == ssd_surgery.INPUT_NAME and inp.shape == (1, 300, 300, 3) and inp.dtype == "float32"
    assert [o.name for o in tflite_model.outputs(interp)] == list(ssd_surgery.POSTPROCESS_OUTPUTS)
    assert exported.params == {"max_detections": 4000, "nms": "regular", "score_threshold": pytest.approx(0.3),
                               "iou_threshold": pytest.approx(0.6), "detections_per_class": 100,
                               "max_classes_per_detection": 1}
    assert exported.runtime_options["object_detection:meta_arch_type"] == 1
    assert exported.runtime_options["object_detection:keep_top_k"] == 4000
    surgery = exported.verify.metrics["surgery"]
    assert surgery["anchors"] == 1917 and surgery["anchors_max_abs_diff_vs_graph"] <= 1e-6
    assert (surgery["box_concat"], surgery["class_concat"]) == ("concat", "concat_1")


def test_outputs_equal_the_numpy_reference_on_the_same_head_tensors(exported):
    """The converted op's outputs == detection_postprocess() on the model's own raw_outputs and anchors."""
    from ai_edge_litert.interpreter import Interpreter

    from edgezoo import zoo
    from edgezoo.datasets import images
    from edgezoo.detection.tflite_postprocess import PostProcessParams, detection_postprocess
    from edgezoo.preprocessing.card import preprocess

    card = zoo.get_card("ssd-mobilenet-v1")
    import warnings

    with warnings.catch_warnings():  # LiteRT warns that keeping intermediate tensors costs memory: we ask for it
        warnings.simplefilter("ignore", UserWarning)
        interp = Interpreter(model_path=str(exported.model), num_threads=1, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    index = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    a = ssd_surgery.read_postprocess_ops(exported.model)[0]["attributes"]
    params = PostProcessParams(**{k: a[k] for k in ("max_detections", "nms_score_threshold", "nms_iou_threshold",
                                                    "num_classes", "max_classes_per_detection",
                                                    "detections_per_class", "use_regular_nms", "y_scale",
                                                    "x_scale", "h_scale", "w_scale")})
    total = 0
    for _, image in images.photographs():
        interp.set_tensor(interp.get_input_details()[0]["index"], preprocess(image, card.preprocess, dtype="float32"))
        interp.invoke()
        get = lambda name: interp.get_tensor(index[name])  # noqa: E731
        ref = detection_postprocess(get(ssd_surgery.BOX_OUTPUT), get(ssd_surgery.CLASS_OUTPUT),
                                    get(ssd_surgery.ANCHORS_NAME), params)
        n = int(get(ssd_surgery.POSTPROCESS_OUTPUTS[3])[0])
        assert n == ref.num_detections
        np.testing.assert_array_equal(get(ssd_surgery.POSTPROCESS_OUTPUTS[0])[0][:n], ref.boxes[:n])
        np.testing.assert_array_equal(get(ssd_surgery.POSTPROCESS_OUTPUTS[1])[0][:n], ref.classes[:n])
        np.testing.assert_array_equal(get(ssd_surgery.POSTPROCESS_OUTPUTS[2])[0][:n], ref.scores[:n])
        total += n
    assert total > 20


def test_end_to_end_parity_passes(exported):
    report = exported.verify
    assert report.passed, report.render()
    assert report.standin and report.headline().startswith("STAND-IN")
    det = report.metrics["detection"]
    assert det["total_original"] >= 20 and det["common_threshold"] == pytest.approx(0.3)
    assert det["common_slots"] == 100
    assert any("do not clip" in n or "does not clip" in n for n in report.notes)


def test_planted_anchor_change_fails_parity():
    """Anchors with the interpolated box placed first (the classic bug) -> parity fails."""
    from edgezoo import zoo
    from edgezoo.verify.detection import verify_detection_models

    folder = reduced_source()
    report = verify_detection_models(folder / "frozen_inference_graph.pb", planted_tflite(),
                                     zoo.get_card("ssd-mobilenet-v1"), standin=True)
    assert not report.passed
    failed = {c.name for c in report.failures()}
    assert "matched_fraction_of_original" in failed


@pytest.mark.parametrize("params,match", [
    ({"max_detections": 0}, r"max_detections: 0 is out of range: expected integer in \[1, 100000\]"),
    ({"max_detections": -5}, r"max_detections: -5 is out of range"),
    ({"nms": "greedy"}, r"nms: expected one of regular \| fast, got 'greedy'"),
    ({"iou_threshold": 1.5}, r"iou_threshold: 1.5 is out of range: expected number in \(0, 1\]"),
    ({"score_threshold": -0.1}, r"score_threshold: -0.1 is out of range: expected number in \[0, 1\]"),
    ({"max_detections": "many"}, r"max_detections: expected integer in \[1, 100000\], got 'many'"),
    ({"max_detections": 10**9}, r"max_detections: 1000000000 is out of range: .*allocated"),
    ({"detections_per_class": 0}, r"detections_per_class: 0 is out of range"),
])
def test_bad_options_are_clear_errors_before_any_work(tmp_path, params, match):
    from edgezoo.recipes import get_recipe

    with pytest.raises(RecipeError, match=match) as err:
        get_recipe(RECIPE)(recipe_input(tmp_path, params))
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
    assert not (tmp_path / "model.tflite").exists()


def test_few_max_detections_warns_and_fast_nms_is_explained(tmp_path):
    from edgezoo.recipes import get_recipe

    out = get_recipe(RECIPE)(recipe_input(tmp_path, {"max_detections": 10, "nms": "fast"}))
    assert any("max_detections 10 is below the original's 100" in n for n in out.notes)
    assert out.params["max_detections"] == 10 and out.params["nms"] == "fast"
    assert ssd_surgery.read_postprocess_ops(out.model)[0]["attributes"]["use_regular_nms"] is False
    det = out.verify.metrics["detection"]
    assert det["common_slots"] == 10  # compared on the top 10, the rest reported as outside the domain
    assert det["total_outside_original"] > 0
    assert any("fast NMS" in n for n in out.verify.notes)


def test_malformed_pipeline_config_is_a_config_error(tmp_path):
    from edgezoo.core.errors import ConfigError
    from edgezoo.recipes import get_recipe

    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "frozen_inference_graph.pb").symlink_to(reduced_source() / "frozen_inference_graph.pb")
    text = (reduced_source() / "pipeline.config").read_text().replace("num_layers: 6", "num_layers: six")
    (folder / "pipeline.config").write_text(text)
    with pytest.raises(ConfigError, match=r"ssd_anchor_generator\.num_layers: expected an integer"):
        get_recipe(RECIPE)(recipe_input(tmp_path / "wd", folder=folder))


def test_config_not_matching_the_graph(tmp_path):
    from edgezoo.recipes import get_recipe

    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "frozen_inference_graph.pb").symlink_to(reduced_source() / "frozen_inference_graph.pb")
    text = (reduced_source() / "pipeline.config").read_text().replace("        aspect_ratios: 3.0\n", "")
    (folder / "pipeline.config").write_text(text)
    with pytest.raises(RecipeError, match=r"boxes per location"):
        get_recipe(RECIPE)(recipe_input(tmp_path / "wd", folder=folder))


@pytest.mark.parametrize("option, message", [
    (["--max-detections", "0"], "--max-detections: 0 is out of range: expected integer in [1, 100000]"),
    (["--score-threshold", "1.5"], "--score-threshold: 1.5 is out of range: expected number in [0, 1]"),
    (["--iou-threshold", "0"], "--iou-threshold: 0 is out of range: expected number in (0, 1]"),
])
def test_cli_bad_option_exits_2_without_building_anything(tmp_path, capsys, _isolated_cache, option, message):
    from edgezoo.cli import main

    code = main(["export", "ssd-mobilenet-v1", "--to", "tflite", "--standin", "--standin-variant", "reduced",
                 "--out", str(tmp_path / "out"), *option])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out" / "ssd-mobilenet-v1" / "tflite").exists()
    assert not any(p.is_file() for p in _isolated_cache.rglob("*"))  # no stand-in was built


@pytest.mark.fullsize
def test_full_size_stand_in_passes_parity(tmp_path):
    """The FULL stand-in (published layer sizes, ~28 MB graph) through the TFLite recipe."""
    from edgezoo.recipes import get_recipe
    from edgezoo.standins import StandinVariant
    from edgezoo.standins.ssd_mobilenet import build_ssd_graph
    from edgezoo.standins.tf_build import write_graph_def as write_graph
    from edgezoo.standins.ssd_mobilenet_config import PIPELINE_CONFIG

    folder = tmp_path / "full"
    folder.mkdir()
    pb = write_graph(build_ssd_graph(StandinVariant.FULL, 0), folder / "frozen_inference_graph.pb")
    (folder / "pipeline.config").write_text(PIPELINE_CONFIG)
    assert pb.stat().st_size > 20e6
    out = get_recipe(RECIPE)(recipe_input(tmp_path / "wd", folder=folder))
    assert out.verify.passed, out.verify.render()
    assert out.verify.metrics["detection"]["total_original"] >= 100
    assert out.verify.metrics["surgery"]["anchors_max_abs_diff_vs_graph"] <= 1e-6
