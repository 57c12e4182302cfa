"""Top-1 and COCO mAP exactly as MLPerf's tools/accuracy-imagenet.py and tools/accuracy-coco.py compute them.

Classification records carry the predicted label as data[0] (float32, already in the dataset's 0..999 convention);
detection records carry groups of 7 float32 [qsl_idx, ymin, xmin, ymax, xmax, score, label], normalised to the
image. A repeated qsl_idx counts once (the first record), as in the scripts.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.core.atomic import write_text_atomically
from edgezoo.core.errors import DatasetError
from edgezoo.datasets.layout import Dataset, DatasetKind, Sample

DETECTION_FIELDS = 7
COCO_RESULTS = "coco-results.json"
# COCOeval.stats, in the order summarize() prints them.
COCO_STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                   "AR_1", "AR_10", "AR_100", "AR_small", "AR_medium", "AR_large")

Record = tuple[int, np.ndarray]  # (qsl_idx, float32 data)


def top1_percent(predicted: Sequence[int], labels: Sequence[int]) -> float:
    """100 * (share of predicted == label), as accuracy-imagenet.py prints it (before its %.3f rounding)."""
    if len(predicted) != len(labels):
        raise ValueError(f"{len(predicted)} predictions for {len(labels)} labels")
    if not labels:
        raise ValueError("no predictions to score")
    good = sum(int(p) == int(t) for p, t in zip(predicted, labels))
    return 100.0 * good / len(labels)


def dedupe(records: Iterable[Record]) -> list[tuple[int, np.ndarray]]:
    """The first record of each qsl_idx, in order, data as float32 (the scripts' `seen` set)."""
    out, seen = [], set()
    for qsl_idx, data in records:
        qsl_idx = int(qsl_idx)
        if qsl_idx not in seen:
            seen.add(qsl_idx)
            out.append((qsl_idx, np.asarray(data, dtype=np.float32).reshape(-1)))
    return out


def _sample_of(dataset: Dataset) -> dict[int, Sample]:
    return {s.index: s for s in dataset.samples}


def _lookup(samples: dict[int, Sample], qsl_idx: int, dataset: Dataset) -> Sample:
    try:
        return samples[qsl_idx]
    except KeyError:
        raise DatasetError(f"qsl_idx {qsl_idx} is not an image of {dataset.root} as opened "
                           f"({len(dataset.samples)} images)",
                           hint="score a log with the dataset it was made on") from None


def imagenet_top1(records: Iterable[Record], dataset: Dataset) -> tuple[float, int, int]:
    """accuracy-imagenet.py on (qsl_idx, data) records: (top-1 %, good, total); label = int(data[0])."""
    if dataset.kind is not DatasetKind.IMAGENET:
        raise DatasetError(f"{dataset.root} is a {dataset.kind.value} dataset: top-1 needs ImageNet")
    samples = _sample_of(dataset)
    predicted, labels = [], []
    for qsl_idx, data in dedupe(records):
        labels.append(_lookup(samples, qsl_idx, dataset).label)
        predicted.append(int(data[0]) if data.size else -1)
    value = top1_percent(predicted, labels)
    return value, sum(int(p) == int(t) for p, t in zip(predicted, labels)), len(labels)


@dataclass
class CocoScore:
    """What accuracy-coco.py computes, plus the counts its --verbose prints."""

    map_percent: float
    stats: list[float]  # COCOeval.stats (12 values, fractions; names: COCO_STAT_NAMES)
    images: int  # images evaluated (with and without detections)
    detections: int
    images_without_detections: int
    index_mismatches: int  # records whose payload image_idx differs from their qsl_idx (the script prints ERROR)
    summary: str = ""  # COCOeval.summarize()'s text
    detections_json: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def stat(self, name: str) -> float:
        return self.stats[COCO_STAT_NAMES.index(name)]


def coco_detections(records: Iterable[Record], dataset: Dataset, *,
                    use_inv_map: bool) -> tuple[list[dict[str, Any]], set[int], int, int]:
    """accuracy-coco.py's conversion: (detections in COCO results format, evaluated image ids, images without
    detections, index mismatches). Pixels from each image's own annotated height/width, in float32 as the script
    computes them; bbox = [xmin, ymin, xmax - xmin, ymax - ymin]; with use_inv_map label i -> category_ids[i - 1]
    (inv_map = [0] + getCatIds(); entry 0 is never a real category)."""
    if dataset.kind is not DatasetKind.COCO:
        raise DatasetError(f"{dataset.root} is a {dataset.kind.value} dataset: mAP needs COCO")
    inv_map = [0, *dataset.category_ids]
    samples = _sample_of(dataset)
    detections: list[dict[str, Any]] = []
    image_ids: set[int] = set()
    empty = mismatches = 0
    for qsl_idx, data in dedupe(records):
        sample = _lookup(samples, qsl_idx, dataset)
        image_ids.add(sample.image_id)
        if data.size < DETECTION_FIELDS:
            empty += 1
            continue
        if data.size % DETECTION_FIELDS:
            raise DatasetError(f"qsl_idx {qsl_idx}: {data.size} floats is not a whole number of 7-float detections")
        height, width = np.float32(sample.height), np.float32(sample.width)
        for image_idx, ymin, xmin, ymax, xmax, score, label in data.reshape(-1, DETECTION_FIELDS):
            mismatches += int(image_idx) != qsl_idx
            ymin, ymax, xmin, xmax = ymin * height, ymax * height, xmin * width, xmax * width
            category = int(label)
            if use_inv_map:
                if not 0 <= category < len(inv_map):
                    raise DatasetError(f"qsl_idx {qsl_idx}: label {category} has no COCO category "
                                       f"(the inverse map covers 0..{len(inv_map) - 1})")
                category = inv_map[category]
            detections.append({"image_id": sample.image_id, "image_loc": str(sample.path), "category_id": category,
                               "bbox": [float(xmin), float(ymin), float(xmax - xmin), float(ymax - ymin)],
                               "score": float(score)})
    return detections, image_ids, empty, mismatches


def coco_map_percent(records: Iterable[Record], dataset: Dataset, *, use_inv_map: bool,
                     results_path: Path | None = None) -> tuple[float, CocoScore]:
    """accuracy-coco.py: pycocotools COCOeval (bbox) over the images the records cover, including those without
    detections. Returns (100 * stats[0], CocoScore). results_path: where to write the detections JSON
    (coco-results.json in the script). pycocotools' console output is captured into CocoScore.summary."""
    detections, image_ids, empty, mismatches = coco_detections(records, dataset, use_inv_map=use_inv_map)
    if results_path is not None:
        write_detections_json(results_path, detections)
    if not image_ids:
        raise DatasetError("no records to score")
    if not detections:
        # pycocotools cannot load an empty result list (MLPerf's script crashes there); nothing found scores 0.
        stats = [0.0] * len(COCO_STAT_NAMES)
        return 0.0, CocoScore(0.0, stats, len(image_ids), 0, empty, mismatches, "no detections", detections)
    stats, summary = _cocoeval(dataset.annotations_path, detections, sorted(image_ids))
    value = 100.0 * stats[0]
    return value, CocoScore(value, stats, len(image_ids), len(detections), empty, mismatches, summary, detections)


def _cocoeval(annotations: Path | None, detections: list[dict[str, Any]],
              image_ids: list[int]) -> tuple[list[float], str]:
    from pycocotools.coco import COCO  # lazy: pycocotools is heavy-ish and only scoring needs it
    from pycocotools.cocoeval import COCOeval

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        ground_truth = COCO(str(annotations))
        results = ground_truth.loadRes(detections)
        evaluator = COCOeval(ground_truth, results, iouType="bbox")
        evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(s) for s in evaluator.stats], text.getvalue()


def write_detections_json(path: Path, detections: list[dict[str, Any]]) -> Path:
    """The COCO results file as accuracy-coco.py writes it (json.dump, sort_keys, indent 4), atomically."""
    return write_text_atomically(Path(path), lambda out: json.dump(detections, out, sort_keys=True, indent=4),
                                 "the COCO detections")
