"""Tolerance names per task: one table, checked with suggestions, used by the engine, detection and export."""

from __future__ import annotations

import re

import pytest

from edgezoo.core.errors import EdgezooError
from edgezoo.verify import tolerances as tol


def test_each_task_knows_its_own_names():
    assert tol.known("detection") == ("match_iou", "min_matched_fraction", "max_box_error", "max_score_error")
    assert tol.known("classification") == tol.known("tensors") == tol.known(None)
    assert "max_abs_error" in tol.known(None) and "min_sqnr_db" in tol.known("tensors")
    assert not set(tol.known("detection")) & set(tol.known("classification"))
    assert tol.defaults("detection")["match_iou"] == 0.9 and tol.defaults(None)["min_cosine"] == 0.9999
    tol.check_names({"match_iou": 0.8, "max_score_error": 0.1}, "detection")
    tol.check_names({"max_rel_error": 0.1}, "tensors")


@pytest.mark.parametrize("name,task,message,hint", [
    ("match_io", "detection", "unknown tolerance 'match_io' for detection parity", "did you mean 'match_iou'"),
    ("max_abs_error", "detection", "for detection parity", "max_abs_error is a classification/tensor tolerance"),
    ("match_iou", "classification", "for classification/tensor parity", "match_iou is a detection tolerance"),
    ("min_cosin", None, "unknown tolerance 'min_cosin'", "did you mean 'min_cosine'"),
])
def test_unknown_names_are_errors_with_a_hint(name, task, message, hint):
    with pytest.raises(EdgezooError) as exc:
        tol.check_names({name: 1.0}, task)
    assert message in str(exc.value) and hint in exc.value.hint


def test_engine_and_detection_read_the_same_table():
    from edgezoo.verify import detection, engine

    assert engine.KNOWN_TOLERANCES is tol.KNOWN_TOLERANCES and engine.DEFAULT_TOLERANCES is tol.DEFAULT_TOLERANCES
    assert detection.DETECTION_TOLERANCES is tol.DETECTION_TOLERANCES
    with pytest.raises(EdgezooError, match="match_iou"):
        engine.effective_tolerances(None, {"match_iou": 0.5})
    # The recipes hand over the card's whole set: other tasks' names are ignored there, not errors.
    assert detection.detection_tolerances(None, {"max_abs_error": 1, "match_iou": 0.5})["match_iou"] == 0.5


def test_every_tolerance_name_has_a_range():
    assert set(tol.RANGES) == set(tol.KNOWN_TOLERANCES) | set(tol.DETECTION_TOLERANCES)
    # The defaults are valid values of their own ranges.
    tol.check_values(tol.DEFAULT_TOLERANCES)
    tol.check_values(tol.DETECTION_TOLERANCES)


@pytest.mark.parametrize("name,value,valid", [
    ("max_abs_error", 0.0, True), ("max_abs_error", -1e-9, False), ("max_abs_error", float("nan"), False),
    ("max_abs_error", float("inf"), False), ("min_cosine", -1.0, True), ("min_cosine", 1.0000001, False),
    ("min_top5_overlap", 1.0, True), ("min_top5_overlap", -0.1, False), ("min_sqnr_db", -20.0, True),
    ("min_sqnr_db", float("-inf"), False), ("match_iou", 0.0, False), ("match_iou", 1.0, True),
    ("min_matched_fraction", 1.01, False), ("max_score_error", 0.0, True),
])
def test_values_are_range_checked(name, value, valid):
    if valid:
        tol.check_values({name: value})
        return
    with pytest.raises(EdgezooError) as exc:
        tol.check_values({name: value}, "model-x")
    text = str(exc.value)
    assert text.startswith(f"model-x: tolerance {name}=") and "out of range" in text and str(tol.RANGES[name]) in text


@pytest.mark.parametrize("items, message", [
    (["max_abs_error"], "--tolerance 'max_abs_error': expected NAME=VALUE"),
    (["max_abs_error=big"], "'big' is not a number"),
    (["min_cosine=2"], "min_cosine=2 is out of range"),
])
def test_tolerance_assignments_are_parsed_once_for_every_command(items, message):
    with pytest.raises(EdgezooError, match=re.escape(message)):
        tol.parse_assignments(items)
    parsed = tol.parse_assignments(["max_abs_error=1e-3", " match_iou = 0.5"])
    assert parsed == {"max_abs_error": 1e-3, "match_iou": 0.5}
