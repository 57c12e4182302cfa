"""What quantization costs, measured with `edgezoo eval` semantics: the same subjects (a bundle's preprocessing and
runtime), the same records and MLPerf scoring, plus agreement with the float model's own predictions.

The dataset's images are decoded and preprocessed once (`ScoringSet`): every variant of a model (float, int8,
each sensitivity probe) takes the same inputs, so only inference runs per variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.datasets import load_image
from edgezoo.evaluation.api import metric_name, score_records
from edgezoo.evaluation.subjects import bundle_subjects
from edgezoo.bundle.reader import Bundle, read_bundle
from edgezoo.zoo.schema import Task

AGREEMENT_SCORE = 0.5  # float detections at or above this score must be found again
AGREEMENT_IOU = 0.5


@dataclass
class Score:
    what: str
    runtime: str
    metric: str  # "top1" | "mAP"
    value: float  # percent
    delta: float | None = None  # value - float value, percentage points
    agreement: float | None = None  # percent of the float model's predictions reproduced
    count: int = 0


class ScoringSet:
    """A dataset's images preprocessed once for one preprocessing (the float bundle's)."""

    def __init__(self, dataset: Any, preprocess: Any, predict: Any = None) -> None:
        """`predict(subject, [(qsl_idx, tensor)]) -> [(qsl_idx, record)]` runs the inference elsewhere (Ray
        actors: evaluation.on_ray.ray_predictor); None runs it here."""
        self.dataset = dataset
        self.samples = list(dataset.samples)
        self.inputs = [preprocess(load_image(sample)) for sample in self.samples]
        self.predict = predict

    def records(self, subject: Any) -> list[tuple[int, np.ndarray]]:
        items = [(s.index, x) for s, x in zip(self.samples, self.inputs)]
        if self.predict is not None:
            return self.predict(subject, items)
        return [(index, subject.predict(x, index)) for index, x in items]


def score(subject: Any, scoring: ScoringSet, reference: list[tuple[int, np.ndarray]] | None = None,
          reference_value: float | None = None) -> tuple[Score, list[tuple[int, np.ndarray]]]:
    """The subject's metric on the set (and delta / agreement against a reference's records and value)."""
    records = scoring.records(subject)
    value = score_records(subject, scoring.dataset, records)
    result = Score(subject.what, subject.runtime.value, metric_name(subject.card), round(value, 3),
                   count=len(records))
    if reference is not None:
        result.agreement = round(100.0 * agreement(subject.task, reference, records), 2)
    if reference_value is not None:
        result.delta = round(value - reference_value, 3)
    return result, records


def agreement(task: Task, reference: Sequence[tuple[int, np.ndarray]],
              other: Sequence[tuple[int, np.ndarray]]) -> float:
    """Classification: the share of images with the same label. Detection: the share of the reference's
    detections (score >= 0.5) found again with the same label at IoU >= 0.5 (1.0 when it has none)."""
    if task is Task.CLASSIFICATION:
        same = [float(a[1][0]) == float(b[1][0]) for a, b in zip(reference, other)]
        return float(np.mean(same)) if same else 1.0
    found = total = 0
    for (_, ref), (_, got) in zip(reference, other):
        ref = ref[ref[:, 5] >= AGREEMENT_SCORE]
        total += len(ref)
        for row in ref:
            same = got[got[:, 6] == row[6]]
            if len(same) and float(np.max(_iou(row[1:5], same[:, 1:5]))) >= AGREEMENT_IOU:
                found += 1
    return found / total if total else 1.0


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one [ymin, xmin, ymax, xmax] box with many."""
    y0 = np.maximum(box[0], boxes[:, 0])
    x0 = np.maximum(box[1], boxes[:, 1])
    y1 = np.minimum(box[2], boxes[:, 2])
    x1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(y1 - y0, 0, None) * np.clip(x1 - x0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def model_subject(bundle: Any, model_file: Path, workdir: Path) -> Any:
    """The evaluation subject of `model_file` preprocessed and decoded as `bundle` (a folder or a
    bundle.reader.Bundle) says: the file need not be the bundle's own model, a preview or a sensitivity probe is
    evaluated in its float bundle's clothes. `workdir` is kept for callers; nothing is written there."""

    folder = bundle.folder if isinstance(bundle, Bundle) else Path(bundle)
    allow_edited = bundle.allow_edited if isinstance(bundle, Bundle) else False
    own = isinstance(bundle, Bundle) and Path(model_file) == bundle.model and bundle.model_override is None
    if own:
        return bundle_subjects(bundle)[0]
    return bundle_subjects(read_bundle(folder, allow_edited=allow_edited, model=Path(model_file).resolve()))[0]
