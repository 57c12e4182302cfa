"""Detection parity: the common domain (thresholds, slot counts, clipping), explanations, and the CLI."""

from __future__ import annotations

import numpy as np

from edgezoo.detection.detections import Detections
from edgezoo.verify.detection import DETECTION_TOLERANCES, common_domain, compare_detectors, detection_tolerances
from edgezoo.verify.detectors import Detector, Domain
from tests.ssd_helpers import planted_tflite, reduced_source, reduced_tflite_export

BOXES = np.array([[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9], [0.2, 0.6, 0.5, 0.95], [0.0, 0.0, 0.2, 0.3],
                  [0.6, 0.1, 0.95, 0.3]])


def _detector(name, boxes, scores, classes, domain):
    dets = Detections(boxes, scores, classes)
    return Detector(name, lambda image: dets, domain)


IMAGES = [("blank", np.zeros((8, 8, 3), np.uint8))]


def test_identical_detectors_pass():
    d = _detector("a", BOXES, [0.9, 0.8, 0.7, 0.6, 0.5], [1, 2, 3, 4, 5], Domain(0.3, 100))
    report = compare_detectors(d, d, IMAGES, DETECTION_TOLERANCES)
    assert report.passed and report.metrics["detection"]["total_matched"] == 5


def test_the_originals_own_threshold_and_slots_define_the_comparison():
    scores = [0.9, 0.8, 0.7, 0.35, 0.1]
    original = _detector("orig", BOXES[:4], scores[:4], [1, 2, 3, 4], Domain(0.3, 3, "pipeline.config"))
    converted = _detector("conv", BOXES, scores, [1, 2, 3, 4, 5], Domain(0.05, 4000))
    report = compare_detectors(original, converted, IMAGES, DETECTION_TOLERANCES)
    det = report.metrics["detection"]
    assert (det["common_threshold"], det["common_slots"]) == (0.3, 3)
    assert det["total_original"] == det["total_converted"] == det["total_matched"] == 3
    assert det["total_outside_original"] == 1 and det["total_outside_converted"] == 2
    assert report.passed
    assert any("at the original's own limits" in n and "outside it: 1 original and 2 converted" in n
               for n in report.notes), report.notes


def test_default_limits_that_drop_the_originals_detections_fail_with_the_figure():
    # An original keeping 5 detections, a conversion whose limits (read from the graph: keep_top_k 1) keep 1: the
    # comparison is the original's complete output, so 4 of 5 are unmatched -- never "the top 1 matched: PASS".
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    original = _detector("orig", BOXES, scores, [1, 2, 3, 4, 5], Domain(0.3, None))
    converted = _detector("conv", BOXES[:1], scores[:1], [1], Domain(0.3, 1))
    report = compare_detectors(original, converted, IMAGES, DETECTION_TOLERANCES)
    assert not report.passed
    det = report.metrics["detection"]
    assert det["total_original"] == 5 and det["total_matched"] == 1 and det["total_original_beyond_converted_limits"] == 4
    assert {c.name: c.value for c in report.checks}["matched_fraction_of_original"] == 0.2
    assert any("default limits (1 detections per image) drop 4 of the original's 5 detections" in n
               for n in report.notes), report.notes
    # a higher default threshold is the same failure
    stricter = _detector("conv", BOXES[:2], scores[:2], [1, 2], Domain(0.75, 100))
    report = compare_detectors(original, stricter, IMAGES, DETECTION_TOLERANCES)
    assert not report.passed and report.metrics["detection"]["total_original_beyond_converted_limits"] == 3


def test_chosen_limits_compare_within_them_and_state_their_cost():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    original = _detector("orig", BOXES, scores, [1, 2, 3, 4, 5], Domain(0.3, None))
    converted = _detector("conv", BOXES[:1], scores[:1], [1], Domain(0.3, 1))
    report = compare_detectors(original, converted, IMAGES, DETECTION_TOLERANCES, chosen={"--keep-top-k": 1})
    assert report.passed
    cost = report.metrics["detection"]["chosen_limits_cost"]
    assert cost == {"original_detections": 5, "left_out": 4, "fraction_left_out": 0.8}
    assert any("the chosen options (--keep-top-k 1) leave out 4 of the original's 5 detections (80.0%)" in n
               for n in report.notes), report.notes


def test_a_conversion_with_more_room_is_compared_at_the_originals_limits():
    # 4000 slots and a lower threshold on the converted side: restricted to the original's own limits, nothing fails
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    original = _detector("orig", BOXES[:3], scores[:3], [1, 2, 3], Domain(0.65, 3))
    converted = _detector("conv", BOXES, scores, [1, 2, 3, 4, 5], Domain(0.05, 4000))
    report = compare_detectors(original, converted, IMAGES, DETECTION_TOLERANCES)
    assert report.passed and report.metrics["detection"]["total_converted"] == 3


def test_unmatched_detections_fail_and_are_listed_with_scores():
    original = _detector("orig", BOXES, [0.9, 0.8, 0.7, 0.6, 0.5], [1, 2, 3, 4, 5], Domain(0.3, 100))
    moved = BOXES.copy()
    moved[1] += 0.05  # IoU with the original ~0.6 < match_iou 0.9
    converted = _detector("conv", moved, [0.9, 0.8, 0.7, 0.6, 0.5], [1, 2, 3, 4, 5], Domain(0.3, 100))
    report = compare_detectors(original, converted, IMAGES, DETECTION_TOLERANCES)
    assert not report.passed
    assert report.metrics["detection"]["images"][0]["unmatched_original"] == [(0.8, 2)]
    assert any("unmatched original detections: 1: 0.800 (class 2)" in n for n in report.notes)


def test_converted_boxes_are_clipped_when_the_original_clips():
    outside = BOXES.copy()
    outside[3] = [-0.1, -0.05, 0.2, 0.3]
    original = _detector("orig", np.clip(outside, 0, 1), [0.9, 0.8, 0.7, 0.6, 0.5], [1, 2, 3, 4, 5],
                         Domain(0.3, 100))
    converted = _detector("conv", outside, [0.9, 0.8, 0.7, 0.6, 0.5], [1, 2, 3, 4, 5], Domain(0.3, 100))
    report = compare_detectors(original, converted, IMAGES, DETECTION_TOLERANCES)
    assert report.passed and report.metrics["detection"]["total_clipped"] == 1
    assert any("does not clip" in n for n in report.notes)


def test_nothing_detected_is_a_failure_not_a_pass():
    empty = _detector("e", np.zeros((0, 4)), [], [], Domain(0.3, 100))
    report = compare_detectors(empty, empty, IMAGES, DETECTION_TOLERANCES)
    assert not report.passed and report.failures()[0].name == "original_detections"


def test_tolerances_merge_and_domain_helpers():
    from edgezoo import zoo

    tol = detection_tolerances(zoo.get_card("ssd-mobilenet-v1"), {"max_box_error": 0.5, "max_abs_error": 1.0})
    assert tol["max_box_error"] == 0.5 and "max_abs_error" not in tol and tol["match_iou"] == 0.9
    assert common_domain(Domain(None, None), Domain(0.2, 10)) == (0.2, 10)


def test_verify_detection_models_on_the_stand_in():
    from edgezoo import zoo
    from edgezoo.verify.detection import verify_detection_models

    exported = reduced_tflite_export()
    report = verify_detection_models(reduced_source() / "frozen_inference_graph.pb", exported.model,
                                     zoo.get_card("ssd-mobilenet-v1"))
    assert report.passed, report.render()
    conv = report.metrics["detection"]["converted"]
    assert conv["nms"] == "per-class (regular)" and conv["slots"] == 4000
    # the pipeline.config beside the frozen graph gives the original's threshold
    assert report.metrics["detection"]["original"]["threshold_source"] == "pipeline.config beside the graph"


def test_cli_verify_exit_codes(tmp_path, capsys):
    from edgezoo.cli import main

    pb = str(reduced_source() / "frozen_inference_graph.pb")
    model = str(reduced_tflite_export().model)
    assert main(["verify", pb, model, "--task", "detection", "--model", "ssd-mobilenet-v1"]) == 0
    assert "PASS parity detection" in capsys.readouterr().out
    capsys.readouterr()
    # planted anchors: a verification failure, exit 1, with the figures
    assert main(["verify", pb, str(planted_tflite()), "--task", "detection", "--model", "ssd-mobilenet-v1"]) == 1
    captured = capsys.readouterr()
    assert "FAIL parity detection" in captured.out and "matched_fraction_of_original" in captured.err
    # a missing file: bad input, exit 2, one line
    assert main(["verify", pb, str(tmp_path / "missing.tflite"), "--task", "detection"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
