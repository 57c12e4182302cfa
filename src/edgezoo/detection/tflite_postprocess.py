"""A numpy reference of TFLite's TFLite_Detection_PostProcess custom op (tensorflow/lite/kernels/detection_postprocess.cc).

Semantics reproduced (and tested against the LiteRT kernel):
- decoding: yc = ty / y_scale * ha + ya, xc = tx / x_scale * wa + xa, h = exp(th / h_scale) * ha,
  w = exp(tw / w_scale) * wa; computed in double, rounded to float32, then corners in float32; no clipping;
- class_predictions has num_classes (+1 when a background column comes first): the background column is skipped;
- a score passes when score >= nms_score_threshold; a box is suppressed when IoU > nms_iou_threshold (float32 IoU,
  0 for empty boxes); candidates are visited by descending score, ties by anchor index (the kernel's stable sort);
- fast NMS: each anchor keeps its best `max_classes_per_detection` classes, ranked by its best score, one
  class-agnostic NMS up to max_detections anchors; num_detections counts anchors; the kernel leaves unused slots
  unwritten (garbage) -- the reference writes zeros there, so only read `num_detections` slots;
- regular NMS: per class, NMS up to detections_per_class, then the overall top max_detections by score; unused slots
  are zeros.
Where the kernel's order is unspecified (std::partial_sort among exactly equal scores of different classes in
regular NMS, or among equal scores of one anchor's classes in fast NMS with max_classes_per_detection > 1), the
reference keeps class order; compare such outputs as sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgezoo.core.errors import ConfigError


@dataclass(frozen=True)
class PostProcessParams:
    """The attributes of the op (the names are the NodeDef/flexbuffer attribute names)."""

    max_detections: int
    nms_score_threshold: float
    nms_iou_threshold: float
    num_classes: int  # without background
    max_classes_per_detection: int = 1
    detections_per_class: int = 100
    use_regular_nms: bool = False
    y_scale: float = 10.0
    x_scale: float = 10.0
    h_scale: float = 5.0
    w_scale: float = 5.0

    def validate(self, where: str = "TFLite_Detection_PostProcess") -> "PostProcessParams":
        """ConfigError for values the kernel would reject or silently misbehave with."""
        checks = [
            (self.max_detections >= 1, "max_detections", f"must be >= 1, got {self.max_detections}",
             "0 detections makes an empty model; the TF OD API default is 100, TI's recipe uses 4000"),
            (self.max_classes_per_detection >= 1, "max_classes_per_detection",
             f"must be >= 1, got {self.max_classes_per_detection}", None),
            (self.detections_per_class >= 1, "detections_per_class", f"must be >= 1, got {self.detections_per_class}",
             None),
            (self.num_classes >= 1, "num_classes", f"must be >= 1, got {self.num_classes}", None),
            (0.0 <= self.nms_score_threshold <= 1.0, "nms_score_threshold",
             f"must be in [0, 1], got {self.nms_score_threshold}", None),
            (0.0 < self.nms_iou_threshold <= 1.0, "nms_iou_threshold",
             f"must be in (0, 1], got {self.nms_iou_threshold}", "the kernel rejects IoU thresholds outside (0, 1]"),
        ]
        for name in ("y_scale", "x_scale", "h_scale", "w_scale"):
            value = getattr(self, name)
            checks.append((bool(np.isfinite(value)) and value > 0, name, f"must be a finite number > 0, got {value}",
                           "a missing or zero scale gives inf boxes"))
        for ok, name, message, hint in checks:
            if not ok:
                raise ConfigError(f"{where}: {name} {message}", hint=hint)
        return self

    @property
    def output_slots(self) -> int:
        return self.max_detections * self.max_classes_per_detection


@dataclass
class PostProcessResult:
    """The op's four outputs for one image (batch dimension removed)."""

    boxes: np.ndarray  # [M, 4] float32 (ymin, xmin, ymax, xmax)
    classes: np.ndarray  # [M] float32, 0-based without background
    scores: np.ndarray  # [M] float32
    num_detections: int  # regular NMS: detections; fast NMS: anchors (each fills max_classes_per_detection slots)
    slots_per_detection: int = 1

    @property
    def valid(self) -> int:
        """Number of meaningful slots."""
        return self.num_detections * self.slots_per_detection


def decode_boxes(box_encodings: np.ndarray, anchors: np.ndarray, params: PostProcessParams) -> np.ndarray:
    """[N, >=4] encodings (ty, tx, th, tw) + [N, 4] anchors (yc, xc, h, w) -> [N, 4] float32 corners."""
    enc = np.asarray(box_encodings, dtype=np.float32).reshape(len(anchors), -1)[:, :4].astype(np.float64)
    anc = np.asarray(anchors, dtype=np.float32).astype(np.float64)
    ycenter = (enc[:, 0] / float(np.float32(params.y_scale)) * anc[:, 2] + anc[:, 0]).astype(np.float32)
    xcenter = (enc[:, 1] / float(np.float32(params.x_scale)) * anc[:, 3] + anc[:, 1]).astype(np.float32)
    half_h = (0.5 * np.exp(enc[:, 2] / float(np.float32(params.h_scale))) * anc[:, 2]).astype(np.float32)
    half_w = (0.5 * np.exp(enc[:, 3] / float(np.float32(params.w_scale))) * anc[:, 3]).astype(np.float32)
    return np.stack([ycenter - half_h, xcenter - half_w, ycenter + half_h, xcenter + half_w], axis=1)


def _iou_one(boxes: np.ndarray, i: int, others: np.ndarray) -> np.ndarray:
    """float32 IoU of box i with boxes[others], in the kernel's operation order."""
    b = boxes[i]
    o = boxes[others]
    area_i = (b[2] - b[0]) * (b[3] - b[1])
    area_o = (o[:, 2] - o[:, 0]) * (o[:, 3] - o[:, 1])
    ih = np.maximum(np.minimum(b[2], o[:, 2]) - np.maximum(b[0], o[:, 0]), np.float32(0))
    iw = np.maximum(np.minimum(b[3], o[:, 3]) - np.maximum(b[1], o[:, 1]), np.float32(0))
    inter = ih * iw
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area_i + area_o - inter)
    return np.where((area_i <= 0) | (area_o <= 0), np.float32(0), iou).astype(np.float32)


def nms_single_class(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float,
                     max_out: int) -> list[int]:
    """Greedy NMS as the kernel does it: anchor indices selected, best first."""
    scores = np.asarray(scores, dtype=np.float32)
    keep = np.flatnonzero(scores >= np.float32(score_threshold))
    if keep.size == 0 or max_out <= 0:
        return []
    order = keep[np.argsort(-scores[keep], kind="stable")]
    active = np.ones(order.size, dtype=bool)
    iou_thr = np.float32(iou_threshold)
    selected: list[int] = []
    for pos in range(order.size):
        if len(selected) >= max_out:
            break
        if not active[pos]:
            continue
        selected.append(int(order[pos]))
        rest = pos + 1 + np.flatnonzero(active[pos + 1:])
        if rest.size:
            active[rest[_iou_one(boxes, int(order[pos]), order[rest]) > iou_thr]] = False
    return selected


def _foreground(class_predictions: np.ndarray, num_boxes: int, num_classes: int) -> np.ndarray:
    scores = np.asarray(class_predictions, dtype=np.float32).reshape(num_boxes, -1)
    offset = scores.shape[1] - num_classes
    if offset not in (0, 1):
        raise ConfigError(f"TFLite_Detection_PostProcess: class predictions have {scores.shape[1]} columns for "
                          f"num_classes {num_classes}", hint="expected num_classes or num_classes + 1 (background)")
    return scores[:, offset:]


def detection_postprocess(box_encodings: np.ndarray, class_predictions: np.ndarray, anchors: np.ndarray,
                          params: PostProcessParams) -> PostProcessResult:
    """The op on one image: box_encodings [1|-, N, 4], class_predictions [1|-, N, C(+1)], anchors [N, 4]."""
    params.validate()
    anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 4)
    n = anchors.shape[0]
    boxes = decode_boxes(box_encodings, anchors, params)
    scores = _foreground(class_predictions, n, params.num_classes)
    slots = params.output_slots
    out_boxes = np.zeros((slots, 4), np.float32)
    out_classes = np.zeros(slots, np.float32)
    out_scores = np.zeros(slots, np.float32)
    if params.use_regular_nms:
        picked_scores: list[np.ndarray] = []
        picked: list[tuple[int, int]] = []
        for c in range(params.num_classes):
            sel = nms_single_class(boxes, scores[:, c], params.nms_score_threshold, params.nms_iou_threshold,
                                   params.detections_per_class)
            picked += [(a, c) for a in sel]
            picked_scores.append(scores[sel, c])
        all_scores = np.concatenate(picked_scores) if picked_scores else np.zeros(0, np.float32)
        order = np.argsort(-all_scores, kind="stable")[:params.max_detections]
        for k, idx in enumerate(order):
            a, c = picked[idx]
            out_boxes[k], out_classes[k], out_scores[k] = boxes[a], c, all_scores[idx]
        return PostProcessResult(out_boxes, out_classes, out_scores, len(order), 1)
    per_anchor = min(params.max_classes_per_detection, params.num_classes)
    if per_anchor == 1:
        best = np.argmax(scores, axis=1)[:, None]  # first maximum, as the kernel's ArgMaxVector
    else:
        best = np.argsort(-scores, axis=1, kind="stable")[:, :per_anchor]
    max_scores = scores[np.arange(n), best[:, 0]]
    sel = nms_single_class(boxes, max_scores, params.nms_score_threshold, params.nms_iou_threshold,
                           params.max_detections)
    for k, a in enumerate(sel):
        for col in range(per_anchor):
            slot = params.max_classes_per_detection * k + col
            c = int(best[a, col])
            out_boxes[slot], out_classes[slot], out_scores[slot] = boxes[a], c, scores[a, c]
    return PostProcessResult(out_boxes, out_classes, out_scores, len(sel), params.max_classes_per_detection)
