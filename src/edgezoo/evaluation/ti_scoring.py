"""Scoring as TI's benchmark does it (edgeai-benchmark datasets/coco_det.py, image_cls.py), from TI-semantics records.

Detection: each image's formatted rows ([N, 6] x1, y1, x2, y2, label, score, normalised; TiDetectionPost.format) are
finished for that image (scaled to its size, clipped, thresholded), each label mapped with `metric.label_offset_pred`
(an int is added; a list is indexed; a mapping looked up, a label it lacks becomes 0), rows whose category is not
>= 1 dropped, boxes written [x1, y1, x2 - x1, y2 - y1], and pycocotools' COCOeval run over every evaluated image
(TI evaluates all images of its dataset, with or without detections). Classification: argmax + label_offset_pred
against the label, which is MLPerf's top-1 (the same function scores it).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.core.errors import ConfigError, DatasetError
from edgezoo.evaluation.metrics import _cocoeval, write_detections_json


def label_to_category(label: Any, offset: Any) -> int:
    """TI's _detection_label_to_catid for the label_offset_pred forms edgezoo writes (int, list, mapping)."""
    if isinstance(offset, Mapping):
        if np.isnan(label) or int(label) not in offset:
            return 0
        return int(offset[int(label)])
    if isinstance(offset, (list, tuple)):
        index = int(label)
        if not 0 <= index < len(offset):
            raise DatasetError(f"label {index} is outside metric.label_offset_pred's {len(offset)} entries")
        return int(offset[index])
    if isinstance(offset, numbers.Number) and not isinstance(offset, bool):
        return int(label + offset)
    raise ConfigError(f"metric.label_offset_pred {offset!r} is not an int, a list or a mapping")


def coco_results(records: Sequence[tuple[int, np.ndarray]], dataset: Any, post: Any,
                 offset: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """(COCO results as TI writes them, the image ids evaluated) from (qsl_idx, formatted rows) records."""
    samples = {s.index: s for s in dataset.samples}
    results: list[dict[str, Any]] = []
    image_ids: list[int] = []
    for qsl_idx, rows in records:
        sample = samples.get(int(qsl_idx))
        if sample is None:
            raise DatasetError(f"qsl_idx {qsl_idx} is not an image of {dataset.root} as opened")
        image_ids.append(sample.image_id)
        for row in post.finish(rows, sample.height, sample.width):
            category = label_to_category(row[4], offset)
            if category < 1:  # TI keeps COCO categories only (they start at 1)
                continue
            x1, y1, x2, y2 = row[0], row[1], row[2], row[3]
            results.append({"image_id": sample.image_id, "bbox": [float(x1), float(y1), float(x2 - x1),
                                                                   float(y2 - y1)],
                            "category_id": int(category), "score": float(row[5])})
    return results, image_ids


def coco_map_percent(records: Sequence[tuple[int, np.ndarray]], dataset: Any, post: Any, offset: Any,
                     results_path: Path | None = None) -> float:
    """TI's accuracy_ap[.5:.95]% (0.0 when nothing was detected, as TI reports it)."""
    results, image_ids = coco_results(records, dataset, post, offset)
    if results_path is not None:
        write_detections_json(results_path, results)
    if not results:
        return 0.0
    stats, _summary = _cocoeval(dataset.annotations_path, results, sorted(set(image_ids)))
    return 100.0 * stats[0]
