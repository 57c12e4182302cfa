"""Recipe 'ssd-onnx-meta-arch' (ResNet34-SSD1200 -> ONNX + meta_arch.prototxt) on the stand-ins."""

import json

import numpy as np
import onnx
import pytest
import yaml

import ssd_models
from edgezoo.cli import main
from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import DataLayout
from edgezoo.export.api import export_model
from edgezoo.recipes import get_recipe
from edgezoo.recipes.base import RecipeInput
from edgezoo.ssd.onnx_heads import rename_tensors
from edgezoo.standins import StandinVariant
from edgezoo.tidl.meta_arch.prototxt import load_meta_arch, save_meta_arch
from edgezoo.tidl.meta_arch.validate import validate_meta_arch
from edgezoo.zoo import Target, get_card

RECIPE = "ssd-onnx-meta-arch"


@pytest.fixture(scope="module")
def card():
    return get_card("ssd-resnet34-1200")


def test_export_reduced_standin_writes_a_verified_tidl_bundle(tmp_path, card):
    result = export_model(card, "onnx", out_dir=tmp_path, standin=True, variant=StandinVariant.REDUCED)
    assert result.passed and result.recipe == RECIPE, result.report.render()
    bundle = result.bundle
    assert bundle == tmp_path / "ssd-resnet34-1200" / "onnx"
    assert {p.name for p in bundle.iterdir()} == {"model.onnx", "meta_arch.prototxt", "runtime_options.yaml",
                                                   "config.yaml", "manifest.json", "verify.json",
                                                   ".edgezoo-output.json"}
    options = yaml.safe_load((bundle / "runtime_options.yaml").read_text())
    assert options["object_detection:meta_arch_type"] == 3
    assert options["object_detection:meta_layers_names_list"] == "meta_arch.prototxt"
    # top_k = every prior (Caffe caps candidates BEFORE NMS); the count computed from the card's grids
    grids = [(1200 // s) ** 2 * (2 + 2 * len(r)) for s, r in zip(card.recipe("onnx").params["steps"],
                                                                   card.recipe("onnx").params["aspect_ratios"])]
    assert options["object_detection:confidence_threshold"] == 0.05
    assert options["object_detection:top_k"] == sum(grids) == 15130
    model = onnx.load(bundle / "model.onnx")
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 1200, 1200] and [o.name for o in model.graph.output] == ["bboxes", "labels", "scores"]
    meta = load_meta_arch(bundle / "meta_arch.prototxt")
    assert validate_meta_arch(meta, model) == []
    ssd = meta.single_ssd()
    assert ssd.data_layout is DataLayout.INTERLEAVED and len(ssd.box_input) == 6
    assert [p.step for p in ssd.prior_box_param] == [24.0, 48.0, 92.3076, 171.4285, 400.0, 400.0]
    verify = json.loads((bundle / "verify.json").read_text())
    assert verify["passed"] and verify["standin"]
    checks = {c["name"]: c["value"] for c in verify["checks"]}
    assert checks["original_detections"] > 100 and checks["matched_fraction_of_original"] == 1.0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["recipe"]["params"]["heads"]["box_input"] == list(ssd.box_input)
    assert manifest["recipe"]["params"]["priors"]["differing_priors"] == 18


def _recipe_input(card, source, tmp_path, **params):
    work = tmp_path / "work"
    work.mkdir(parents=True, exist_ok=True)
    return RecipeInput(card=card, target=Target.ONNX, sources={"resnet34-ssd1200.onnx": source},
                       params={**card.recipe("onnx").params, **params}, workdir=work, standin=True,
                       tolerances=dict(card.tolerances))


def test_speed_thresholds_and_long_head_names(tmp_path, card):
    model = onnx.load(ssd_models.reduced_standin())
    first_box = next(n for n in model.graph.node if n.op_type == "Conv" and list(
        next(a.ints for a in n.attribute if a.name == "strides")) == [3, 3]).output[0]
    long = "model/" + "block/" * 110 + "loc"
    source = tmp_path / "long-names.onnx"
    source.write_bytes(rename_tensors(model, {first_box: long}).SerializeToString())
    out = get_recipe(RECIPE)(_recipe_input(card, source, tmp_path, confidence_threshold=0.3))
    assert out.verify.passed, out.verify.render()
    ssd = load_meta_arch(out.extra_files["meta_arch.prototxt"]).single_ssd()
    assert ssd.box_input[0] == "ssd_box_0" and ssd.detection_output_param.confidence_threshold == 0.3
    assert out.params["heads"]["renamed"] == {long: "ssd_box_0"}
    assert any("renamed head tensor" in n for n in out.notes)
    assert out.runtime_options["object_detection:confidence_threshold"] == 0.3
    # a speed setting measures what it costs against the exact defaults (all of the original's detections)
    loss = out.params["speed_setting_parity"]
    assert loss["exact"]["matched_fraction"] == 1.0 and loss["chosen"]["original"] > loss["chosen"]["matched"]
    assert loss["chosen"]["converted"] == loss["chosen"]["matched"]  # only the ones below 0.3 are lost
    assert any(n.startswith("parity loss of the chosen thresholds") for n in out.notes)


def test_spec_that_does_not_fit_the_heads_is_a_recipe_error(tmp_path, card):
    source = ssd_models.reduced_standin()
    with pytest.raises(RecipeError, match=r"head 1 \('Conv_\d+'\) has 6 boxes per location, the spec gives 4"):
        get_recipe(RECIPE)(_recipe_input(card, source, tmp_path, aspect_ratios=[[2]] * 6))
    with pytest.raises(RecipeError, match="scales: expected 7 values"):
        get_recipe(RECIPE)(_recipe_input(card, source, tmp_path, scales=[84, 180]))


def test_verify_cli_with_prototxt_exit_codes(tmp_path, card, capsys):
    model = ssd_models.reduced_standin()
    meta = ssd_models.generated_meta(model)
    good = save_meta_arch(meta, tmp_path / "good.prototxt")
    args = ["verify", str(model), str(model), "--model", "ssd-resnet34-1200", "--random", "0", "--prototxt"]
    assert main(args + [str(good)]) == 0
    assert "PASS parity detection" in capsys.readouterr().out
    import dataclasses
    from edgezoo.verify.meta_arch import with_ssd
    priors = list(meta.single_ssd().prior_box_param)
    priors[0] = dataclasses.replace(priors[0], min_size=(120.0,))
    perturbed = save_meta_arch(with_ssd(meta, prior_box_param=tuple(priors)), tmp_path / "perturbed.prototxt")
    assert main(args + [str(perturbed)]) == 1
    broken = save_meta_arch(with_ssd(meta, output=("bboxes",)), tmp_path / "broken.prototxt")
    assert main(args + [str(broken)]) == 2
    err = capsys.readouterr().err
    assert "caffe_ssd.output: 1 given, the graph has 3" in err and "Traceback" not in err


@pytest.mark.fullsize
def test_export_full_size_standin(tmp_path, card):
    result = export_model(card, "onnx", out_dir=tmp_path, standin=True, variant=StandinVariant.FULL)
    assert result.passed, result.report.render()
    checks = {c.name: c.value for c in result.report.checks}
    assert checks["original_detections"] > 300 and checks["matched_fraction_of_original"] >= 0.99
    size = (result.bundle / "model.onnx").stat().st_size
    assert 75e6 < size < 85e6  # the published file is 80,363,696 bytes
    assert np.isclose(checks["max_score_error"], 0, atol=1e-5)


def test_fold_clamped_priors_option(tmp_path, card):
    out = get_recipe(RECIPE)(_recipe_input(card, ssd_models.reduced_standin(), tmp_path, fold_clamped_priors=True))
    assert out.verify.passed, out.verify.render()
    assert out.params["fold_clamped_priors"]["priors"] == 18
    assert any("folded the MLPerf/TIDL prior size ratios of 2 anchors (18 priors)" in n for n in out.notes)
    plain = get_recipe(RECIPE)(_recipe_input(card, ssd_models.reduced_standin(), tmp_path / "x"))
    assert plain.params["fold_clamped_priors"] is None
    assert any("fold_clamped_priors=true" in n for n in plain.notes)
    with pytest.raises(RecipeError, match=r"fold_clamped_priors: expected true\|false, got 'maybe'"):
        get_recipe(RECIPE)(_recipe_input(card, ssd_models.reduced_standin(), tmp_path, fold_clamped_priors="maybe"))
