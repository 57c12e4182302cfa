"""Reference executor of a caffe_ssd meta-architecture: what TIDL computes after the heads, in numpy.

Given the head tensors (NCHW, as the ONNX model produces them) and a parsed prototxt, it applies the prototxt's
semantics: priors per head (Caffe PriorBox, see tidl.meta_arch.priors), the head layout (SEPARATED: channel = anchor *
rows + row; INTERLEAVED: channel = row * anchors + anchor), box decoding with variances (CORNER, CENTER_SIZE,
CENTER_SIZE_YXHW), the score converter (SOFTMAX over classes, SIGMOID, IDENTITY), then Caffe DetectionOutput:
per class except the background, candidates with score > confidence_threshold, the best nms_param.top_k of them
(BEFORE NMS, Caffe's meaning of top_k), greedy NMS suppressing IoU > nms_threshold, then the keep_top_k best
overall. Boxes are not clipped. Priors are ordered per head, row, column, anchor (Caffe's order); ties in score
keep that order (stable sort).

Note the one semantic difference from ONNX NonMaxSuppression (used inside the MLPerf graph): there
max_output_boxes_per_class limits boxes AFTER NMS; here top_k limits candidates BEFORE it. They agree whenever a
class has no more than top_k candidates above the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgezoo.core.errors import ConfigError
from edgezoo.detection.codings import CodeType, DataLayout, ScoreConverter
from edgezoo.detection.detections import Detections
from edgezoo.tidl.meta_arch.priors import priors_per_location, tidl_priors
from edgezoo.tidl.meta_arch.prototxt import CaffeSsd

SUPPORTED_CODES = (CodeType.CORNER, CodeType.CENTER_SIZE, CodeType.CENTER_SIZE_YXHW)


@dataclass(frozen=True)
class RawDetections:
    """Detections as TIDL's DetectionOutput gives them: boxes (x1, y1, x2, y2) normalised, labels, scores."""

    boxes_xyxy: np.ndarray  # [n, 4]
    labels: np.ndarray  # [n] int64, class index (background included in the numbering)
    scores: np.ndarray  # [n]

    def detections(self) -> Detections:
        """As the verification matcher wants them: (ymin, xmin, ymax, xmax)."""
        return Detections(self.boxes_xyxy[:, [1, 0, 3, 2]], self.scores, self.labels)


def _to_hwa(t: np.ndarray, anchors: int, rows: int, layout: DataLayout, what: str) -> np.ndarray:
    """[1, anchors*rows, H, W] -> [H, W, anchors, rows] under the layout."""
    t = np.asarray(t)
    if t.ndim != 4 or t.shape[0] != 1 or t.shape[1] != anchors * rows:
        raise ConfigError(f"{what}: shape {list(t.shape)}, expected [1, {anchors} x {rows} = {anchors * rows}, H, W]")
    _, _, h, w = t.shape
    if layout is DataLayout.INTERLEAVED:
        return t.reshape(rows, anchors, h, w).transpose(2, 3, 1, 0)
    return t.reshape(anchors, rows, h, w).transpose(2, 3, 0, 1)


def decode_boxes(loc: np.ndarray, priors: np.ndarray, variances: Sequence[float], code: CodeType) -> np.ndarray:
    """Regressions [N, 4] + priors [N, 4] (cx, cy, w, h) -> boxes [N, 4] (x1, y1, x2, y2)."""
    v = np.asarray(variances, dtype=np.float64)
    loc = loc.astype(np.float64)
    pcx, pcy, pw, ph = priors.T
    if code is CodeType.CENTER_SIZE:
        cx, cy = v[0] * loc[:, 0] * pw + pcx, v[1] * loc[:, 1] * ph + pcy
        w, h = np.exp(v[2] * loc[:, 2]) * pw, np.exp(v[3] * loc[:, 3]) * ph
    elif code is CodeType.CENTER_SIZE_YXHW:  # regressions (ty, tx, th, tw), variances in the same order
        cy, cx = v[0] * loc[:, 0] * ph + pcy, v[1] * loc[:, 1] * pw + pcx
        h, w = np.exp(v[2] * loc[:, 2]) * ph, np.exp(v[3] * loc[:, 3]) * pw
    elif code is CodeType.CORNER:
        corners = np.stack([pcx - pw / 2, pcy - ph / 2, pcx + pw / 2, pcy + ph / 2], axis=1)
        return corners + v[None, :] * loc
    else:
        raise ConfigError(f"code_type {code.name} is not implemented by the reference executor",
                          hint="supported: " + ", ".join(c.name for c in SUPPORTED_CODES))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def convert_scores(logits: np.ndarray, converter: ScoreConverter) -> np.ndarray:
    """[N, C] logits -> scores under the converter."""
    x = logits.astype(np.float64)
    if converter is ScoreConverter.SOFTMAX:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if converter is ScoreConverter.SIGMOID:
        return 1.0 / (1.0 + np.exp(-x))
    return x


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa
    union = area(box) + area(boxes) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, top_k: int | None) -> np.ndarray:
    """Greedy NMS (Caffe ApplyNMSFast, eta 1): indices kept, best first. `scores` are the candidates' scores."""
    order = np.argsort(-scores, kind="stable")
    if top_k is not None and top_k > -1:
        order = order[:top_k]
    keep: list[int] = []
    alive = np.ones(len(order), dtype=bool)
    cand = boxes[order]
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(int(order[i]))
        if i + 1 < len(order):
            rest = np.arange(i + 1, len(order))
            rest = rest[alive[rest]]
            if len(rest):
                alive[rest[_iou_one_to_many(cand[i], cand[rest]) > threshold]] = False
    return np.asarray(keep, dtype=np.int64)


class MetaArchExecutor:
    """Runs one caffe_ssd block on head outputs. Construction checks the fields execution needs."""

    def __init__(self, ssd: CaffeSsd, where: str = "prototxt") -> None:
        self.ssd = ssd
        dop = ssd.detection_output_param
        missing = [f for f, v in (("in_width", ssd.in_width), ("in_height", ssd.in_height),
                                  ("data_layout", ssd.data_layout), ("detection_output_param", dop)) if v is None]
        if dop is not None:
            missing += [f"detection_output_param.{f}" for f in ("num_classes", "code_type")
                        if getattr(dop, f) is None]
        for k, p in enumerate(ssd.prior_box_param):
            if None in p.effective_steps():
                missing.append(f"prior_box_param[{k}].step")
            if len(p.variance) != 4:
                missing.append(f"prior_box_param[{k}].variance (4 values)")
        if missing:
            raise ConfigError(f"{where}: cannot execute, missing or malformed: {', '.join(missing)}")
        assert dop is not None and dop.code_type is not None and dop.num_classes is not None
        if dop.code_type not in SUPPORTED_CODES:
            raise ConfigError(f"{where}: code_type {dop.code_type.name} is not implemented by the reference executor",
                              hint="supported: " + ", ".join(c.name for c in SUPPORTED_CODES))
        self.num_classes = dop.num_classes
        self.code = dop.code_type
        self.background = 0 if dop.background_label_id is None else dop.background_label_id
        nms_param = dop.nms_param
        self.nms_threshold = 0.3 if nms_param is None or nms_param.nms_threshold is None else nms_param.nms_threshold
        self.top_k = None if nms_param is None else nms_param.top_k
        self.keep_top_k = dop.keep_top_k
        self.confidence = dop.confidence_threshold if dop.confidence_threshold is not None else -np.inf
        self.variance_in_target = bool(dop.variance_encoded_in_target)
        self._priors: dict[tuple[int, int, int], np.ndarray] = {}

    def priors(self, head: int, grid: tuple[int, int]) -> np.ndarray:
        """[H, W, A, 4] priors of one head (cached per grid)."""
        key = (head, *grid)
        if key not in self._priors:
            p = self.ssd.prior_box_param[head]
            image = p.image_size(self.ssd.in_height, self.ssd.in_width)
            self._priors[key] = tidl_priors(p, grid, image)  # type: ignore[arg-type]
        return self._priors[key]

    def decode(self, box_outputs: Sequence[np.ndarray],
               class_outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Head tensors -> (boxes [N, 4] x1y1x2y2, scores [N, num_classes]) over all priors, Caffe order."""
        n = len(self.ssd.prior_box_param)
        if len(box_outputs) != n or len(class_outputs) != n:
            raise ConfigError(f"{len(box_outputs)} box and {len(class_outputs)} class tensors for {n} prior_box_param")
        layout = self.ssd.data_layout
        assert layout is not None
        boxes, logits = [], []
        for k, (b, c) in enumerate(zip(box_outputs, class_outputs)):
            param = self.ssd.prior_box_param[k]
            a = priors_per_location(param)
            loc = _to_hwa(b, a, 4, layout, f"box_input[{k}] {self.ssd.box_input[k]!r}")
            cls = _to_hwa(c, a, self.num_classes, layout, f"class_input[{k}] {self.ssd.class_input[k]!r}")
            if cls.shape[:2] != loc.shape[:2]:
                raise ConfigError(f"head {k}: box grid {loc.shape[:2]} and class grid {cls.shape[:2]} differ")
            pri = self.priors(k, loc.shape[:2])
            variances = (1.0, 1.0, 1.0, 1.0) if self.variance_in_target else param.variance
            boxes.append(decode_boxes(loc.reshape(-1, 4), pri.reshape(-1, 4), variances, self.code))
            logits.append(cls.reshape(-1, self.num_classes))
        scores = convert_scores(np.concatenate(logits), self.ssd.effective_score_converter)
        return np.concatenate(boxes), scores

    def select(self, boxes: np.ndarray, scores: np.ndarray) -> RawDetections:
        """Per-class threshold + top_k + NMS, then keep_top_k overall."""
        out_boxes, out_labels, out_scores = [], [], []
        for c in range(self.num_classes):
            if c == self.background:
                continue
            cand = np.nonzero(scores[:, c] > self.confidence)[0]
            if not len(cand):
                continue
            kept = cand[nms(boxes[cand], scores[cand, c], self.nms_threshold, self.top_k)]
            out_boxes.append(boxes[kept])
            out_scores.append(scores[kept, c])
            out_labels.append(np.full(len(kept), c, dtype=np.int64))
        if not out_scores:
            return RawDetections(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0))
        b, l, s = np.concatenate(out_boxes), np.concatenate(out_labels), np.concatenate(out_scores)
        order = np.argsort(-s, kind="stable")
        if self.keep_top_k is not None and self.keep_top_k > -1:
            order = order[:self.keep_top_k]
        return RawDetections(b[order], l[order], s[order])

    def __call__(self, box_outputs: Sequence[np.ndarray], class_outputs: Sequence[np.ndarray]) -> RawDetections:
        return self.select(*self.decode(box_outputs, class_outputs))
