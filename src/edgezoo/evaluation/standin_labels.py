"""Ground truth for stand-in datasets from a stand-in model, so that accuracy figures on them are informative.

A stand-in model has random (calibrated) weights: on real ImageNet/COCO labels it scores ~0, and so would every
artifact made from it, hiding any conversion error. Labelling the stand-in dataset with the ORIGINAL model makes the
original score 100 % top-1 (and a high mAP), so an artifact's delta measures exactly what the conversion changed,
and an artifact that drops or shifts detections scores measurably lower.

`model_labeller(subject)` gives the `labeller` that `edgezoo.datasets.build_standin` takes:
classification: image_bgr -> ImageNet label (0..999); detection: image_bgr -> [(category_id, [x, y, w, h])] in
pixels, the subject's confident detections (see RELATIVE_SCORE), as COCO category ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgezoo.datasets.coco_categories import COCO_CATEGORIES
from edgezoo.evaluation.subjects import Subject
from edgezoo.zoo.schema import Task

# Detections kept as ground truth: those scoring at least RELATIVE_SCORE x the image's best score (SSD-MobileNet's
# stand-in scores its clear detections above 0.9, ResNet34-SSD's 81-class softmax stays near 0.4) and MIN_SCORE,
# at most MAX_BOXES per image so that a handful of images gives a balanced set.
RELATIVE_SCORE = 0.5
MIN_SCORE = 0.1
MAX_BOXES = 20
MIN_SIDE_PX = 2.0
_COCO_IDS = frozenset(cid for cid, _ in COCO_CATEGORIES)


def model_labeller(subject: Subject, *, min_score: float = MIN_SCORE,
                   max_boxes: int = MAX_BOXES) -> Callable[[np.ndarray], Any]:
    """The labeller of `build_standin` that makes ground truth from `subject`'s own predictions."""
    if subject.task is Task.CLASSIFICATION:
        def label(image_bgr: np.ndarray) -> int:
            # A 1001-class model predicting the background gives -1: not an ImageNet label, so use 0 (a miss).
            return max(0, int(subject.predict(subject.preprocess(image_bgr))[0]))

        return label

    def boxes(image_bgr: np.ndarray) -> list[tuple[int, list[float]]]:
        height, width = image_bgr.shape[:2]
        records = subject.predict(subject.preprocess(image_bgr))
        found = []
        ranked = records[np.argsort(-records[:, 5], kind="stable")]
        floor = max(min_score, RELATIVE_SCORE * float(ranked[0, 5])) if len(ranked) else min_score
        for _, ymin, xmin, ymax, xmax, score, label in ranked:
            if score < floor or len(found) >= max_boxes:
                break
            x0, y0 = max(0.0, float(xmin) * width), max(0.0, float(ymin) * height)
            x1, y1 = min(float(width), float(xmax) * width), min(float(height), float(ymax) * height)
            if x1 - x0 < MIN_SIDE_PX or y1 - y0 < MIN_SIDE_PX:
                continue
            # MLPerf's inverse map: contiguous label k (1..80) is the k-th category of instances_val2017.json.
            category = COCO_CATEGORIES[int(label) - 1][0] if subject.use_inv_map else int(label)
            if category not in _COCO_IDS:
                continue  # one of the 91-id label map's ten ids without a COCO 2017 category
            found.append((category, [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]))
        return found

    return boxes
