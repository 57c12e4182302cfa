import numpy as np
import pytest

from edgezoo.detection.boxes import iou_matrix
from edgezoo.detection.detections import Detections, match_detections


def test_iou_of_known_boxes():
    a = np.array([[0, 0, 1, 1], [0, 0, 0.5, 0.5]])
    b = np.array([[0, 0, 1, 1], [0.5, 0.5, 1, 1], [0, 0, 0.5, 1]])
    expected = np.array([[1.0, 0.25, 0.5], [0.25, 0.0, 0.5]])
    np.testing.assert_allclose(iou_matrix(a, b), expected)


def test_identical_detections_match_fully():
    d = Detections([[0.1, 0.1, 0.5, 0.5], [0.2, 0.6, 0.9, 0.95]], [0.9, 0.4], [1, 18])
    m = match_detections(d, d, 0.9)
    assert m.matched == 2 and m.reference_matched_fraction == 1.0 and m.worst_box_error == 0.0


def test_class_mismatch_and_shifted_box_are_reported():
    ref = Detections([[0.1, 0.1, 0.5, 0.5], [0.2, 0.6, 0.9, 0.95]], [0.9, 0.4], [1, 18])
    conv = Detections([[0.11, 0.1, 0.5, 0.5], [0.2, 0.6, 0.9, 0.95]], [0.85, 0.4], [1, 3])
    m = match_detections(ref, conv, 0.9)
    assert m.matched == 1
    assert m.worst_box_error == pytest.approx(0.01)
    assert m.worst_score_error == pytest.approx(0.05)
    assert m.unmatched_reference == [(1, 0.4, 18)] and m.unmatched_converted == [(1, 0.4, 3)]
    assert m.reference_matched_fraction == 0.5 and m.converted_matched_fraction == 0.5


def test_empty_sides():
    empty = Detections(np.zeros((0, 4)), [], [])
    one = Detections([[0, 0, 1, 1]], [0.5], [2])
    assert match_detections(empty, empty).reference_matched_fraction == 1.0
    m = match_detections(one, empty)
    assert m.reference_matched_fraction == 0.0 and m.converted_matched_fraction == 1.0


def test_a_box_clipped_flat_against_the_border_matches_itself():
    flat = Detections(np.array([[0.2, 1.0, 0.7, 1.0]]), np.array([0.8]), np.array([3]))
    m = match_detections(flat, Detections(flat.boxes + 1e-8, flat.scores, flat.classes), 0.9)
    assert m.matched == 1 and m.worst_box_error < 1e-7
    assert match_detections(flat, Detections(flat.boxes + 1e-3, flat.scores, flat.classes), 0.9).matched == 0
