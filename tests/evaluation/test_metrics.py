"""Scoring with known answers: hand-built ground truth and detections whose top-1 / mAP is worked out in the test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgezoo.core.errors import DatasetError
from edgezoo.datasets import open_dataset
from edgezoo.evaluation.metrics import coco_map_percent, imagenet_top1, top1_percent
from tests.datasets.dataset_files import coco_annotations, coco_folder, imagenet_folder

DOG, CATEGORIES = 18, [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 44, "name": "bottle"}]
# Three images, one dog each: (id, height, width, ground-truth box [x, y, w, h] in pixels).
IMAGES = [(11, 200, 400, [0, 0, 100, 100]), (22, 200, 400, [40, 20, 100, 100]), (33, 300, 300, [10, 10, 50, 50])]
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0, 1, 101)


@pytest.fixture
def coco(tmp_path):
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "height": h, "width": w} for i, h, w, _ in IMAGES]
    anns = [{"id": n + 1, "image_id": i, "category_id": DOG, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
            for n, (i, _, _, box) in enumerate(IMAGES)]
    return open_dataset(coco_folder(tmp_path, coco_annotations(images, anns, CATEGORIES)))


def _record(qsl_idx, boxes_xywh, scores, label):
    """A 7-float record from pixel boxes: normalised by the image's own size, [qsl_idx, ymin, xmin, ymax, xmax, ...]."""
    _, h, w, _ = IMAGES[qsl_idx]
    rows = [[qsl_idx, y / h, x / w, (y + bh) / h, (x + bw) / w, s, label]
            for (x, y, bw, bh), s in zip(boxes_xywh, scores)]
    return qsl_idx, np.array(rows, dtype=np.float32).reshape(-1)


def _iou(a, b):
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def _ap(recall_reached):
    """101-point interpolated AP when precision is 1 up to `recall_reached` and nothing beyond (0 without hits)."""
    return np.sum(RECALL_POINTS <= recall_reached + 1e-9) / 101 if recall_reached else 0.0


# A: exact box (score 0.9). B: same width, 62.5 px high inside the 100 px truth -> IoU 0.625 (score 0.8). C: none.
BOX_B = [40, 20, 100, 62.5]


def _expected_map(ious, ground_truths):
    """Mean over the 10 IoU thresholds; the detections are in score order and each is a hit or a miss."""
    aps = []
    for t in IOU_THRESHOLDS:
        hits = sum(iou >= t for iou in ious)  # hits come first (higher scores): precision 1 up to this recall
        aps.append(_ap(hits / ground_truths))
    return 100 * float(np.mean(aps))


def test_known_map_with_an_image_without_detections(coco):
    assert _iou(IMAGES[1][3], BOX_B) == 0.625
    records = [_record(0, [IMAGES[0][3]], [0.9], DOG), _record(1, [BOX_B], [0.8], DOG), (2, np.zeros(0, np.float32))]
    value, score = coco_map_percent(records, coco, use_inv_map=False)
    expected = _expected_map([1.0, 0.625], ground_truths=3)
    assert expected == pytest.approx(100 * (3 * 67 + 7 * 34) / 1010)  # the same, counted by hand
    assert value == pytest.approx(expected, abs=1e-9)
    assert score.images == 3 and score.images_without_detections == 1 and score.detections == 2
    assert score.index_mismatches == 0 and "Average Precision" in score.summary

    # The image without detections is still evaluated: leaving its record out raises recall (2 truths, not 3).
    value_ab, _ = coco_map_percent(records[:2], coco, use_inv_map=False)
    assert value_ab == pytest.approx(_expected_map([1.0, 0.625], ground_truths=2), abs=1e-9)
    assert value_ab > value


def test_inverse_label_map_turns_contiguous_labels_into_coco_ids(coco, tmp_path):
    # inv_map = [0] + getCatIds() = [0, 1, 18, 44]: the dog is contiguous label 2
    records = [_record(0, [IMAGES[0][3]], [0.9], 2), _record(1, [BOX_B], [0.8], 2), (2, np.zeros(0, np.float32))]
    value, score = coco_map_percent(records, coco, use_inv_map=True, results_path=tmp_path / "coco-results.json")
    assert value == pytest.approx(_expected_map([1.0, 0.625], ground_truths=3), abs=1e-9)
    written = json.loads((tmp_path / "coco-results.json").read_text())
    assert [d["category_id"] for d in written] == [DOG, DOG]
    assert written[1]["image_id"] == 22 and written[1]["bbox"] == pytest.approx(BOX_B, abs=1e-4)  # pixels, xywh
    # without the inverse map, label 2 is COCO's "bicycle": nothing matches
    assert coco_map_percent(records, coco, use_inv_map=False)[0] == 0.0


def test_shifted_or_dropped_detections_score_lower_and_repeats_count_once(coco):
    good = [_record(0, [IMAGES[0][3]], [0.9], DOG), _record(1, [IMAGES[1][3]], [0.8], DOG),
            _record(2, [IMAGES[2][3]], [0.7], DOG)]
    assert coco_map_percent(good, coco, use_inv_map=False)[0] == pytest.approx(100.0)
    shifted = [_record(i, [[x + 0.3 * w, y, w, h]], [s], DOG)
               for i, ((x, y, w, h), s) in enumerate(zip([im[3] for im in IMAGES], [0.9, 0.8, 0.7]))]
    # IoU of a box shifted by 30 % of its width: 0.7 / 1.3
    assert coco_map_percent(shifted, coco, use_inv_map=False)[0] == pytest.approx(
        _expected_map([0.7 / 1.3] * 3, ground_truths=3), abs=1e-6)
    dropped = good[:2] + [(2, np.zeros(0, np.float32))]
    assert coco_map_percent(dropped, coco, use_inv_map=False)[0] == pytest.approx(100 * 67 / 101)
    # a repeated qsl_idx (LoadGen may issue an image twice) counts once: the first record
    assert coco_map_percent(good + [_record(0, [[300, 100, 5, 5]], [0.99], DOG)], coco,
                            use_inv_map=False)[0] == pytest.approx(100.0)


def test_payload_index_mismatch_is_counted_and_bad_records_are_errors(coco):
    qsl, data = _record(0, [IMAGES[0][3]], [0.9], DOG)
    data[0] = 2  # the payload says image 2 while LoadGen says 0: accuracy-coco.py prints ERROR and goes on
    assert coco_map_percent([(0, data)], coco, use_inv_map=False)[1].index_mismatches == 1
    with pytest.raises(DatasetError, match="not a whole number of 7-float detections"):
        coco_map_percent([(0, np.zeros(9, np.float32))], coco, use_inv_map=False)
    with pytest.raises(DatasetError, match="qsl_idx 7 is not an image"):
        coco_map_percent([_record(0, [IMAGES[0][3]], [0.9], DOG), (7, np.zeros(0, np.float32))], coco,
                         use_inv_map=False)
    with pytest.raises(DatasetError, match="label 9 has no COCO category"):
        coco_map_percent([_record(0, [IMAGES[0][3]], [0.9], 9)], coco, use_inv_map=True)


def test_top1_percent_counts_matches():
    predicted, labels = [1, 2, 3, 4, 5, 6, 7, 8], [1, 0, 3, 9, 5, 5, 7, 1]
    good = len([i for i in range(8) if predicted[i] == labels[i]])  # 1, 3, 5, 7 -> 4
    assert top1_percent(predicted, labels) == 100 * good / 8 == 50.0
    with pytest.raises(ValueError):
        top1_percent([1], [1, 2])


def test_imagenet_top1_from_records_uses_val_map_labels_and_first_of_repeats(tmp_path):
    entries = [(f"val/{i}.JPEG", label) for i, label in enumerate([65, 970, 0, 999])]
    ds = open_dataset(imagenet_folder(tmp_path, entries))
    records = [(0, np.array([65], np.float32)), (1, np.array([969], np.float32)), (2, np.array([0], np.float32)),
               (3, np.array([999], np.float32)), (1, np.array([970], np.float32))]  # the repeat is ignored
    assert imagenet_top1(records, ds) == (75.0, 3, 4)
    with pytest.raises(DatasetError, match="top-1 needs ImageNet"):
        imagenet_top1(records, open_dataset(coco_folder(tmp_path / "c", coco_annotations(
            [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 10}], [], CATEGORIES))))
