"""Tolerance names per task: one table, checked with suggestions, used by the engine, detection and export."""

from __future__ import annotations

import pytest

from edgezoo.errors import EdgezooError
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
