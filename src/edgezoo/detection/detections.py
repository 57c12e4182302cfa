"""IoU-matched comparison of two detection lists (the core of detection parity).

Matching is greedy in descending reference score: each reference detection takes the unmatched converted
detection of the same class with the highest IoU, if that IoU reaches `match_iou`. Figures are reported both ways
(what fraction of the reference was found, what fraction of the converted output is explained), with the worst box
and score errors among matched pairs and the unmatched detections listed with their scores, so a difference can be
explained (e.g. a detection just below a score threshold on one side) rather than hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgezoo.detection.boxes import iou_matrix


@dataclass(frozen=True)
class Detections:
    """One image's detections: boxes [n,4] (ymin, xmin, ymax, xmax, normalised), scores [n], dataset class ids [n]."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4))
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "classes", np.asarray(self.classes).reshape(-1).astype(np.int64))
        if not (len(self.boxes) == len(self.scores) == len(self.classes)):
            raise ValueError("boxes, scores and classes must have the same length")

    def __len__(self) -> int:
        return len(self.scores)

    def above(self, threshold: float) -> "Detections":
        keep = self.scores >= threshold
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])

    def top(self, k: int) -> "Detections":
        order = np.argsort(-self.scores, kind="stable")[:k]
        return Detections(self.boxes[order], self.scores[order], self.classes[order])


@dataclass
class DetectionMatch:
    reference_count: int
    converted_count: int
    pairs: list[tuple[int, int, float]] = field(default_factory=list)  # (ref index, converted index, IoU)
    box_errors: list[float] = field(default_factory=list)  # max abs coordinate difference per pair
    score_errors: list[float] = field(default_factory=list)
    unmatched_reference: list[tuple[int, float, int]] = field(default_factory=list)  # (index, score, class)
    unmatched_converted: list[tuple[int, float, int]] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return len(self.pairs)

    @property
    def reference_matched_fraction(self) -> float:
        return self.matched / self.reference_count if self.reference_count else 1.0

    @property
    def converted_matched_fraction(self) -> float:
        return self.matched / self.converted_count if self.converted_count else 1.0

    @property
    def worst_box_error(self) -> float:
        return max(self.box_errors, default=0.0)

    @property
    def worst_score_error(self) -> float:
        return max(self.score_errors, default=0.0)


def match_detections(reference: Detections, converted: Detections, match_iou: float = 0.5) -> DetectionMatch:
    result = DetectionMatch(len(reference), len(converted))
    if len(reference) and len(converted):
        ious = iou_matrix(reference.boxes, converted.boxes)
        # The same box is the same box, also when it has no area (a box clipped flat against the image border has
        # IoU 0 with itself)
        same = np.abs(reference.boxes[:, None, :] - converted.boxes[None, :, :]).max(axis=2) <= 1e-6
        ious = np.where(same, 1.0, np.nan_to_num(ious, nan=0.0))
        ious[reference.classes[:, None] != converted.classes[None, :]] = -1.0
    else:
        ious = np.zeros((len(reference), len(converted)))
    taken = np.zeros(len(converted), dtype=bool)
    for r in np.argsort(-reference.scores, kind="stable"):
        candidates = np.where(taken, -1.0, ious[r]) if len(converted) else np.array([])
        c = int(np.argmax(candidates)) if len(candidates) else -1
        if c >= 0 and candidates[c] >= match_iou:
            taken[c] = True
            result.pairs.append((int(r), c, float(candidates[c])))
            result.box_errors.append(float(np.max(np.abs(reference.boxes[r] - converted.boxes[c]))))
            result.score_errors.append(float(abs(reference.scores[r] - converted.scores[c])))
        else:
            result.unmatched_reference.append((int(r), float(reference.scores[r]), int(reference.classes[r])))
    result.unmatched_converted = [(int(c), float(converted.scores[c]), int(converted.classes[c]))
                                  for c in np.where(~taken)[0]]
    return result
