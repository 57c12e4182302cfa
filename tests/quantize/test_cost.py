"""Agreement with the float model's predictions (classification labels; detections matched by label and IoU)."""

from __future__ import annotations

import numpy as np
import pytest

from edgezoo.quantize.cost import agreement
from edgezoo.zoo.schema import Task


def _det(*rows):
    return np.array([[0, *r] for r in rows], np.float32).reshape(-1, 7)


def test_classification_agreement_is_the_share_of_equal_labels():
    ref = [(i, np.array([label], np.float32)) for i, label in enumerate([1, 2, 3, 4])]
    got = [(i, np.array([label], np.float32)) for i, label in enumerate([1, 2, 9, 4])]
    assert agreement(Task.CLASSIFICATION, ref, got) == 0.75


def test_detection_agreement_matches_label_and_iou():
    # reference: two confident boxes and one below 0.5 (ignored)
    ref = [(0, _det((0.0, 0.0, 0.5, 0.5, 0.9, 1), (0.5, 0.5, 1.0, 1.0, 0.8, 2), (0, 0, 1, 1, 0.3, 3)))]
    # the first found again shifted by 0.05 (IoU = 0.45^2 / (2 * 0.25 - 0.45^2) = 0.681), the second with a wrong label
    got = [(0, _det((0.05, 0.05, 0.55, 0.55, 0.7, 1), (0.5, 0.5, 1.0, 1.0, 0.8, 5)))]
    assert agreement(Task.DETECTION, ref, got) == pytest.approx(0.5)
    # shifted by 0.2: IoU = 0.3^2 / (0.5 - 0.09) = 0.22 < 0.5, not found
    far = [(0, _det((0.2, 0.2, 0.7, 0.7, 0.9, 1)))]
    assert agreement(Task.DETECTION, ref, far) == 0.0
    assert agreement(Task.DETECTION, [(0, _det())], far) == 1.0  # nothing confident to find
