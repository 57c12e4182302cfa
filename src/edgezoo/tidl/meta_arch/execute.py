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

Speed (an FPN's 51,150 priors x 90 classes at threshold 1e-8 are 4.6 million candidates): the selection runs over
all classes at once, in the order of the final output -- score descending, then class, then prior -- and stops
when keep_top_k detections are kept. That is exact: a box is only ever suppressed by a kept box of its own class
with a higher rank, so every class's greedy NMS sees its candidates in its own order, and whatever comes after the
keep_top_k-th kept box scores no higher than it and would be cut by keep_top_k. Candidates go in blocks: IoU
against the kept boxes of the same class as one array operation, then the greedy pass inside the block on its
precomputed same-class IoU matrix. `select_per_class` is the literal per-class loop, kept as the oracle.
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
FLOAT32_EXP = 80.0  # e^-80 divided by up to 10^4 classes is still a normal float32


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


def convert_scores(logits: np.ndarray, converter: ScoreConverter, inplace: bool = False) -> np.ndarray:
    """[N, C] logits -> scores under the converter, in the logits' precision when they are float32 (what the
    heads give; TIDL itself computes in fixed point), else float64. `inplace`: overwrite the logits.

    float32 keeps exponents within +-FLOAT32_EXP: a score below e^-80 (1.8e-35) is computed as about that instead of
    a subnormal number -- arithmetic on subnormals is ~50x slower on x86 and no threshold tells them apart."""
    float32 = logits.dtype == np.float32
    x = logits if inplace and float32 else logits.astype(np.float32 if float32 else np.float64)
    if converter is ScoreConverter.SOFTMAX:
        x -= x.max(axis=1, keepdims=True)
        if float32:
            np.maximum(x, -FLOAT32_EXP, out=x)
        np.exp(x, out=x)
        x /= x.sum(axis=1, keepdims=True)
        return x
    if converter is ScoreConverter.SIGMOID:
        if float32:
            np.clip(x, -FLOAT32_EXP, FLOAT32_EXP, out=x)
        np.negative(x, out=x)
        np.exp(x, out=x)
        x += 1.0
        np.divide(1.0, x, out=x)
        return x
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
        float32 = all(np.asarray(c).dtype == np.float32 for c in class_outputs)
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
            logits.append(cls)
        # one copy of the class heads into prior order, the score converter in place on it
        total = sum(int(np.prod(c.shape[:3])) for c in logits)
        flat = np.empty((total, self.num_classes), dtype=np.float32 if float32 else np.float64)
        start = 0
        for cls in logits:
            rows = int(np.prod(cls.shape[:3]))
            flat[start:start + rows].reshape(cls.shape)[...] = cls
            start += rows
        scores = convert_scores(flat, self.ssd.effective_score_converter, inplace=True)
        return np.concatenate(boxes), scores

    def select(self, boxes: np.ndarray, scores: np.ndarray) -> RawDetections:
        """Per-class threshold + top_k + NMS, then keep_top_k overall (see the module docstring: all classes at
        once, in output order, stopping at keep_top_k)."""
        cand_prior, cand_class = self._candidates(scores)
        keep = self.keep_top_k if self.keep_top_k is not None and self.keep_top_k > -1 else len(cand_prior)
        if not len(cand_prior) or keep == 0:
            return RawDetections(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0))
        cand_score = scores[cand_prior, cand_class]
        kept: list[np.ndarray] = []
        state = _Kept()
        for batch in _in_output_order(cand_prior, cand_class, cand_score, keep):
            found = state.take(boxes, cand_prior[batch], cand_class[batch], self.nms_threshold, keep - state.count)
            kept.append(batch[found])
            if state.count >= keep:
                break
        idx = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
        return RawDetections(boxes[cand_prior[idx]], cand_class[idx].astype(np.int64), cand_score[idx])

    def _candidates(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(prior, class) of every candidate: above the confidence, not background, within its class's top_k."""
        columns = scores.shape[1]
        prior, cls = np.divmod(np.flatnonzero(np.ascontiguousarray(scores) > self.confidence), columns)
        if 0 <= self.background < columns:
            not_background = cls != self.background
            prior, cls = prior[not_background], cls[not_background]
        if self.top_k is not None and -1 < self.top_k < len(scores):
            keep = np.ones(len(prior), dtype=bool)
            for c in np.nonzero(np.bincount(cls, minlength=columns) > self.top_k)[0]:
                idx = np.nonzero(cls == c)[0]  # in prior order
                keep[idx[np.argsort(-scores[prior[idx], c], kind="stable")[self.top_k:]]] = False
            prior, cls = prior[keep], cls[keep]
        return prior, cls

    def select_per_class(self, boxes: np.ndarray, scores: np.ndarray) -> RawDetections:
        """The same selection written as Caffe's DetectionOutput loops it: each class, then keep_top_k. Slow at
        FPN scale; the oracle `select` is checked against."""
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


BLOCK = 1024  # candidates per block: the in-block IoU matrix is BLOCK^2 float64 (8 MB)


def _iou_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a [n, 4] with every box in b [m, 4] (x1, y1, x2, y2), as _iou_one_to_many computes it."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)

    def area(x: np.ndarray) -> np.ndarray:
        return np.maximum(x[:, 2] - x[:, 0], 0.0) * np.maximum(x[:, 3] - x[:, 1], 0.0)

    union = area(a)[:, None] + area(b)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _in_output_order(prior: np.ndarray, cls: np.ndarray, score: np.ndarray, keep: int):  # noqa: ANN202
    """Index batches of the candidates in output order (score descending, then class, then prior: the per-class
    loop's order after its final stable sort). Each batch is every candidate scoring at least the n-th best of
    those left (ties never split between batches), so the millions of candidates of an FPN at threshold 1e-8 are
    never sorted whole: selection usually ends inside the first batch."""
    left = np.arange(len(score))
    size = max(4 * keep, 4 * BLOCK)
    while len(left):
        if len(left) > size:
            cut = np.partition(score[left], len(left) - size)[len(left) - size]
            batch, left = left[score[left] >= cut], left[score[left] < cut]
        else:
            batch, left = left, left[:0]
        yield batch[np.lexsort((prior[batch], cls[batch], -score[batch]))]
        size *= 4


class _Kept:
    """The boxes kept so far (any class), and greedy NMS of the next candidates against them."""

    def __init__(self) -> None:
        self.boxes = np.zeros((0, 4))
        self.classes = np.zeros(0, dtype=np.int64)

    @property
    def count(self) -> int:
        return len(self.classes)

    def take(self, boxes: np.ndarray, prior: np.ndarray, cls: np.ndarray, threshold: float, limit: int
             ) -> np.ndarray:
        """Positions (in these candidates, which are in output order) of at most `limit` candidates that no kept
        box of the same class -- nor an earlier one taken here -- overlaps by IoU > threshold. Classes never
        suppress each other, so each class is decided on its own (small IoU matrices) and the first `limit` of the
        union in output order are taken: exactly what one pass in output order would keep."""
        taken: list[np.ndarray] = []
        count = 0
        for start in range(0, len(prior), BLOCK):
            stop = min(start + BLOCK, len(prior))
            b, c = boxes[prior[start:stop]].astype(np.float64), cls[start:stop].astype(np.int64)
            keep = np.zeros(stop - start, dtype=bool)
            for k in np.unique(c):
                members = np.nonzero(c == k)[0]
                mb = b[members]
                alive = np.ones(len(members), dtype=bool)
                old = self.boxes[self.classes == k]
                if len(old):
                    alive &= ~(_iou_block(mb, old) > threshold).any(axis=1)
                if len(members) > 1:
                    same = _iou_block(mb, mb) > threshold
                    for i in range(len(members)):
                        if alive[i]:
                            alive[i + 1:] &= ~same[i, i + 1:]
                keep[members[alive]] = True
            block = np.nonzero(keep)[0][:limit - count]
            taken.append(start + block)
            count += len(block)
            self.boxes = np.concatenate([self.boxes, b[block]])
            self.classes = np.concatenate([self.classes, c[block]])
            if count >= limit:
                break
        return np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)
