import dataclasses
from pathlib import Path

import pytest

import ssd_models
from edgezoo.core.errors import ConfigError, EdgezooError
from edgezoo.datasets.images import photographs
from edgezoo.tidl.meta_arch.generate import Thresholds
from edgezoo.tidl.meta_arch.prototxt import save_meta_arch
from edgezoo.verify.meta_arch import verify_with_prototxt, with_ssd
from edgezoo.zoo import get_card


@pytest.fixture(scope="module")
def card():
    return get_card("ssd-resnet34-1200")


@pytest.fixture(scope="module")
def images():
    return photographs(("astronaut", "coffee", "rocket"))


def _write(meta, tmp_path) -> Path:
    return save_meta_arch(meta, tmp_path / "meta_arch.prototxt")


def test_generated_prototxt_reproduces_the_model(tmp_path, card, images):
    model = ssd_models.reduced_standin()
    meta = ssd_models.generated_meta(model)
    report = verify_with_prototxt(model, _write(meta, tmp_path), card=card, images=images, standin=True)
    assert report.passed, report.render()
    checks = {c.name: c.value for c in report.checks}
    assert checks["original_detections"] >= 100  # astronaut 110, coffee 22, rocket 4 on the seed-0 stand-in
    assert checks["matched_fraction_of_original"] == 1.0 and checks["matched_fraction_of_converted"] == 1.0
    assert checks["max_box_error"] < 1e-5 and checks["max_score_error"] < 1e-5
    assert report.metrics["priors"]["differing_priors"] == 18  # MLPerf's clamped boxes, reported
    assert report.headline().startswith("STAND-IN: PASS")


@pytest.mark.parametrize("change, failing", [
    ({"min_size": (100.0,)}, "matched_fraction_of_original"),  # head 0 boxes 100 px instead of 84
    ({"step": 25.0}, "matched_fraction_of_original"),  # head 0 centres drift by up to 0.05
])
def test_perturbed_prior_fails_parity(tmp_path, card, images, change, failing):
    model = ssd_models.reduced_standin()
    meta = ssd_models.generated_meta(model)
    priors = list(meta.single_ssd().prior_box_param)
    priors[0] = dataclasses.replace(priors[0], **change)
    bad = with_ssd(meta, prior_box_param=tuple(priors))
    if "step" in change:  # 1200/25 = 48 != 50: the validator rejects it before any parity
        with pytest.raises(ConfigError, match=r"prior_box_param\[0\].step: head .* 50x50 grid"):
            verify_with_prototxt(model, _write(bad, tmp_path), card=card, images=images)
        return
    report = verify_with_prototxt(model, _write(bad, tmp_path), card=card, images=images)
    assert not report.passed
    failed = {c.name: c.value for c in report.failures()}
    assert failing in failed and failed[failing] < 0.95, report.render()
    assert report.metrics["priors"]["max_abs_diff"] > 0.01


def test_speed_thresholds_fail_unless_chosen_then_compare_like_with_like(tmp_path, card, images):
    model = ssd_models.reduced_standin()
    meta = ssd_models.generated_meta(model, Thresholds(confidence_threshold=0.3))
    # not chosen: the original's detections between 0.05 and 0.3 are compared, and missing
    strict = verify_with_prototxt(model, _write(meta, tmp_path), card=card, images=images)
    assert not strict.passed
    dropped = strict.metrics["detection"]["total_original_beyond_converted_limits"]
    assert dropped > 0 and strict.metrics["detection"]["total_original"] > 20
    assert any(f"default limits (score threshold 0.3) drop {dropped} of the original's" in n for n in strict.notes)
    # chosen: compared above 0.3 only, and the report says what the choice leaves out
    report = verify_with_prototxt(model, _write(meta, tmp_path), card=card, images=images,
                                  chosen={"--confidence-threshold": 0.3})
    assert report.passed, report.render()
    det = report.metrics["detection"]
    assert 1 <= det["total_original"] <= 20 and det["common_threshold"] == pytest.approx(0.3)
    assert det["total_outside_original"] == dropped  # set aside, not compared, and counted
    assert det["chosen_limits_cost"]["left_out"] == dropped
    assert any("compared on the common domain (the chosen options): scores >= 0.3" in n for n in report.notes)
    assert any(f"the chosen options (--confidence-threshold 0.3) leave out {dropped} of the original's" in n
               for n in report.notes)


def test_invalid_prototxt_and_unknown_tolerance_are_input_errors(tmp_path, card, images):
    model = ssd_models.reduced_standin()
    meta = ssd_models.generated_meta(model)
    with pytest.raises(ConfigError, match=r"caffe_ssd.output: 1 given, the graph has 3"):
        verify_with_prototxt(model, _write(with_ssd(meta, output=("bboxes",)), tmp_path), card=card, images=images)
    with pytest.raises(EdgezooError, match="unknown tolerance 'max_iou'"):
        verify_with_prototxt(model, _write(meta, tmp_path), card=card, images=images, tolerances={"max_iou": 1})


def test_without_a_card_outputs_are_found_by_name_and_nothing_detected_fails(tmp_path, images):
    """Without a card the preprocessing is the generic [-1, 1] one, on which this stand-in (trained, so to speak,
    on ImageNet normalisation) detects nothing: parity on nothing must not pass."""
    model = ssd_models.reduced_standin()
    report = verify_with_prototxt(model, _write(ssd_models.generated_meta(model), tmp_path), images=images)
    assert [c.name for c in report.failures()] == ["original_detections"]
    assert "priors" not in report.metrics and any("detected nothing" in n for n in report.notes)


def test_cli_one_model_with_prototxt(tmp_path, capsys):
    from edgezoo.cli import main

    model = ssd_models.reduced_standin()
    prototxt = _write(ssd_models.generated_meta(model), tmp_path)
    code = main(["verify", str(model), "--prototxt", str(prototxt), "--model", "ssd-resnet34", "--random", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS" in out.splitlines()[0]
    assert main(["verify", str(model)]) == 2
    assert "verify needs ORIGINAL and CONVERTED" in capsys.readouterr().err
