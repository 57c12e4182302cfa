"""What an ONNX SSD's post-processing DOES with detections we plant: output roles, labels, background, and a check of
every limit read from the graph.

The graph's tail alone (ssd.onnx_ssd_probe) is fed regressions that put boxes where we want them (the measured
decoding inverted: onnx_ssd_probe.encode_rows) and logits that give each chosen prior one class at a chosen score,
every other prior certain background. From the outputs:
- which output holds the boxes (and their corner order and units), the scores, the labels, the count;
- the label of class column c (the label offset) and whether column 0 is a background that never comes out;
- whether suppression is per class (two identical boxes of two classes both come out);
- that the score threshold, IoU threshold, per-class and overall limits read from the graph
  (ssd.onnx_ssd_limits) are what the graph does: one detection just above / below the threshold, two nested boxes
  just above / below the IoU, limit + 1 well-separated boxes. A difference is an exit-2 error that names the option
  to give, never a silent guess; a limit the graph has and the reader did not see is refused the same way.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import DataLayout, ScoreConverter
from edgezoo.ssd.onnx_ssd_probe import TailProbe, encode_rows

_L = 40.0  # logit magnitude: softmax/sigmoid of -2L is ~1e-35, 0 for every threshold a graph uses
_PROBE_MAX = 3000  # well-separated boxes planted at most (NonMaxSuppression cost stays in milliseconds)
BOX_A = (0.25, 0.30, 0.55, 0.70)  # x1, y1, x2, y2: not symmetric in x and y, so the output order shows
BOX_B = (0.60, 0.10, 0.90, 0.35)


@dataclass(frozen=True)
class OutputRoles:
    boxes: str
    scores: str
    labels: str
    count: str | None
    order: str  # "xyxy" | "yxyx"
    scale: tuple[float, float]  # output box units per normalised unit (x, y)


class _Planter:
    """Regressions and logits that produce chosen detections, fed through the tail."""

    def __init__(self, probe: Any, decode: Any, converter: ScoreConverter, background: int | None) -> None:
        self.probe, self.decode, self.converter, self.background = probe, decode, converter, background
        self.n, self.c = probe.n, probe.c

    def logits(self, planted: list[tuple[int, int, float]]) -> np.ndarray:
        """[N, C]: every prior background (or nothing), then (prior, class, probability) planted."""
        if self.converter is ScoreConverter.SOFTMAX:
            out = np.full((self.n, self.c), -2 * _L)
            out[:, self.background if self.background is not None else 0] = _L
        elif self.converter is ScoreConverter.SIGMOID:
            out = np.full((self.n, self.c), -2 * _L)
        else:
            out = np.zeros((self.n, self.c))
        for prior, cls, p in planted:
            row = np.full(self.c, -2 * _L) if self.converter is not ScoreConverter.IDENTITY else np.zeros(self.c)
            if self.converter is ScoreConverter.SOFTMAX:
                row[cls] = math.log(p)
                rest = [k for k in range(self.c) if k != cls]
                if self.background is not None and self.background != cls:
                    row[self.background] = math.log(1 - p) if p < 1 else -2 * _L
                elif rest:  # no background column: the rest spread thinly over the other classes
                    row[rest] = math.log(max(1 - p, 1e-30) / len(rest))
            elif self.converter is ScoreConverter.SIGMOID:
                row[cls] = math.log(p / (1 - p)) if p < 1 else _L
            else:
                row[cls] = p
            out[prior] = row
        return out

    def run(self, boxes: list[tuple[float, float, float, float]], planted: list[tuple[int, float]]
            ) -> dict[str, np.ndarray]:
        """Box k (normalised x1, y1, x2, y2) decoded from prior k, detected as planted[k] = (class, probability)."""

        loc = np.zeros((self.n, 4))
        if boxes:
            k = len(boxes)
            loc[:k] = encode_rows(np.asarray(boxes, np.float64), self.decode.priors[:k], self.decode.variances,
                                  self.decode.probe["loc_columns"])
        return self.probe.run(loc, self.logits([(i, c, p) for i, (c, p) in enumerate(planted)]))


def _rows(value: np.ndarray, width: int) -> np.ndarray:
    return np.asarray(value).reshape(-1, width) if np.asarray(value).size % width == 0 else np.zeros((0, width))


def _find_roles(r1: dict[str, np.ndarray], r2: dict[str, np.ndarray], labels: tuple[int, int],
                where: str) -> tuple[OutputRoles, int]:
    """Roles from a run with one detection (BOX_A, class labels[0], 0.9) and one with two (plus BOX_B, labels[1],
    0.8): (roles, label of class column labels[0])."""
    a, b = np.asarray(BOX_A), np.asarray(BOX_B)
    boxes = order = scale = None
    for name, value in r1.items():
        rows = _rows(value, 4)
        if np.asarray(value).dtype.kind != "f" or not len(rows):
            continue
        first = rows[0].astype(np.float64)
        for candidate, ref in (("xyxy", a), ("yxyx", a[[1, 0, 3, 2]])):
            s = first / ref
            if np.allclose(s[0], s[2], rtol=1e-4) and np.allclose(s[1], s[3], rtol=1e-4) and s[0] > 0 and s[1] > 0:
                boxes, order = name, candidate
                scale = (_snap(s[0]), _snap(s[1])) if candidate == "xyxy" else (_snap(s[1]), _snap(s[0]))
                break
        if boxes:
            break
    if boxes is None:
        raise RecipeError(f"{where}: a detection planted in the heads comes out in no output as a box",
                          hint="the graph's outputs must hold the decoded boxes")
    scores = next((n for n, v in r1.items() if n != boxes and np.asarray(v).dtype.kind == "f" and np.asarray(v).size
                   and abs(float(np.asarray(v).reshape(-1)[0]) - 0.9) < 1e-3), None)
    count = next((n for n, v in r1.items() if n not in (boxes, scores) and np.asarray(v).size == 1
                  and float(np.asarray(v).reshape(-1)[0]) == 1 and np.asarray(r2[n]).size == 1
                  and float(np.asarray(r2[n]).reshape(-1)[0]) == 2), None)
    label = None
    for name, value in r1.items():
        if name in (boxes, scores, count) or not np.asarray(value).size:
            continue
        v1 = np.asarray(value).reshape(-1)
        v2 = np.asarray(r2[name]).reshape(-1)
        if len(v2) < 2 or len(v1) < 1:
            continue
        if v1[0] == round(float(v1[0])) and v2[1] - v2[0] == labels[1] - labels[0] and v2[0] == v1[0]:
            label = name
            break
    if scores is None or label is None:
        raise RecipeError(f"{where}: cannot tell the scores and labels among the outputs ({', '.join(r1)})",
                          hint="the graph's outputs must hold the detections' scores and labels")
    return OutputRoles(boxes, scores, label, count, order, scale), int(round(float(np.asarray(r1[label]).reshape(-1)[0])))


def _snap(v: float) -> float:
    """A units factor read off float32 boxes (1.0000001, 319.99997): to 5 significant digits."""
    return float(f"{float(v):.5g}")


def _count(out: dict[str, np.ndarray], roles: OutputRoles) -> int:
    if roles.count:
        return int(np.asarray(out[roles.count]).reshape(-1)[0])
    return int(np.asarray(out[roles.scores]).size)


def _grid(k: int) -> list[tuple[float, float, float, float]]:
    """k small boxes that do not overlap, on a grid inside the image."""
    side = math.ceil(math.sqrt(k))
    cell = 0.9 / side
    return [(0.05 + (i % side) * cell, 0.05 + (i // side) * cell, 0.05 + (i % side) * cell + 0.6 * cell,
             0.05 + (i // side) * cell + 0.6 * cell) for i in range(k)]


def probe_behaviour(model: Any, heads: Any, decode: Any, limits: Any, where: str, given: Collection[str] = ()
                    ) -> Any:
    """`decode` completed with background, label offset and the original's output roles, every limit checked
    against the graph's behaviour (see the module docstring). `given`: the options the user set (confidence_threshold,
    nms_threshold, top_k, keep_top_k): theirs is the value used, so the graph's is neither required nor checked."""
    given = set(given)
    notes = list(decode.notes)
    unreadable = [u for u in limits.unreadable if not any(f"--{g.replace('_', '-')}" in u for g in given)]
    probe = TailProbe(model, heads.box_concat, heads.class_concat, heads.num_priors, heads.num_classes,
                      heads.layout is DataLayout.INTERLEAVED, ranks=heads.ranks)
    converter = decode.score_converter
    c = heads.num_classes
    if c < 3:
        raise RecipeError(f"{where}: {c} score columns: too few to tell background and labels apart",
                          hint="an SSD has a background and at least one class")
    # Background: a class-0 detection that never comes out (the outputs are those of no detection at all).
    quiet = _Planter(probe, decode, converter, 0)
    r0, nothing = quiet.run([BOX_A], [(0, 0.99)]), quiet.run([], [])
    same = all(np.asarray(r0[k]).shape == np.asarray(v).shape and np.array_equal(r0[k], v) for k, v in nothing.items())
    background = 0 if same else None
    planter = _Planter(probe, decode, converter, background)
    if background is None:
        notes.append("score column 0 is a class (no background column)")
    first, second = (1, 2) if c > 2 else (1, 1)
    r1 = planter.run([BOX_A], [(first, 0.9)])
    r2 = planter.run([BOX_A, BOX_B], [(first, 0.9), (second, 0.8)])
    roles, label = _find_roles(r1, r2, (first, second), where)
    offset = label - first
    if background is None:
        nothing_counts = _count(planter.run([], []), roles)
        if nothing_counts:
            raise RecipeError(f"{where}: with every prior scoring class 0, the graph outputs {nothing_counts} "
                              "detections", hint="TIDL's detection layer needs a background column")

    def count(boxes: list, planted: list) -> int:
        return _count(planter.run(boxes, planted), roles)

    fg = [k for k in range(c) if k != background]
    # Per-class suppression: the same box in two classes comes out twice.
    if count([BOX_A, BOX_A], [(fg[0], 0.9), (fg[1], 0.8)]) != 2:
        raise RecipeError(f"{where}: the graph's NonMaxSuppression is class-agnostic (one box of two classes comes "
                          "out once)", hint="TIDL's detection layer suppresses per class; export per-class NMS")
    # IoU threshold: nested boxes of IoU just above / below it.
    iou = limits.iou_threshold
    if iou is not None and 0.05 < iou < 0.95 and "nms_threshold" not in given:
        for target, expected in ((iou + 0.02, 1), (iou - 0.02, 2)):
            r = math.sqrt(target)
            inner = (0.3, 0.3, 0.3 + 0.4 * r, 0.3 + 0.4 * r)
            got = count([(0.3, 0.3, 0.7, 0.7), inner], [(fg[0], 0.9), (fg[0], 0.8)])
            if got != expected:
                raise RecipeError(f"{where}: the IoU threshold read from the graph ({iou:g}) is not what it does "
                                  f"(IoU {target:.3g}: {got} boxes kept)", hint="give --nms-threshold VALUE")
    # Score threshold.
    score = limits.score_threshold
    if "confidence_threshold" in given:
        pass
    elif score is not None and not (converter is ScoreConverter.SOFTMAX and background is None):
        step = max(1e-4, 1e-3 * score)
        for p, expected in ((score + step, 1), (score - step, 0)):
            if 0 < p < 1 and count([BOX_A], [(fg[0], p)]) != expected:
                raise RecipeError(f"{where}: the score threshold read from the graph ({score:g}) is not what it does "
                                  f"(a score of {p:.6g} {'dropped' if expected else 'kept'})",
                                  hint="give --confidence-threshold VALUE")
    elif score is None and converter is not ScoreConverter.IDENTITY and count([BOX_A], [(fg[0], 1e-3)]) == 0:
        unreadable.append("score threshold (--confidence-threshold): a score of 0.001 is dropped, no threshold read")
    # Limits: well-separated boxes, one class, then several.
    if {"top_k", "keep_top_k"} & given:
        return _completed(decode, background, offset, roles, notes, unreadable, where)
    per_class = min(v for v in (limits.per_class, limits.candidates, heads.num_priors) if v is not None)
    total = limits.total
    k = min(per_class + 1, heads.num_priors, _PROBE_MAX)
    expected = min(k, per_class, total if total is not None else k)
    got = count(_grid(k), [(fg[0], 0.9 - 1e-5 * i) for i in range(k)])
    if got != expected:
        _refuse(where, f"{k} well-separated boxes of one class: {got} kept, {expected} expected from the limits read "
                f"(per class {limits.per_class}, candidates {limits.candidates}, overall {total})", got)
    if len(fg) >= 2:
        k = min((total + 1) if total is not None else _PROBE_MAX, heads.num_priors, _PROBE_MAX)
        spread = max(2, min(len(fg), math.ceil(k / max(per_class, 1))))
        planted = [(fg[i % spread], 0.9 - 1e-5 * i) for i in range(k)]
        per = [sum(1 for cls, _ in planted if cls == f) for f in fg[:spread]]
        expected = min(sum(min(v, per_class) for v in per), total if total is not None else k)
        got = count(_grid(k), planted)
        if got != expected:
            _refuse(where, f"{k} well-separated boxes over {spread} classes: {got} kept, {expected} expected from "
                    f"the limits read (per class {limits.per_class}, candidates {limits.candidates}, overall "
                    f"{total})", got)
    return _completed(decode, background, offset, roles, notes, unreadable, where)


def _completed(decode: Any, background: int | None, offset: int, roles: OutputRoles, notes: list[str],
               unreadable: list[str], where: str) -> Any:
    if unreadable:
        raise RecipeError(f"{where}: could not read for sure: {'; '.join(dict.fromkeys(unreadable))}",
                          hint="give the value(s) as the option(s) named")
    return replace(decode, background_label_id=0 if background == 0 else -1, label_offset=offset,
                   outputs=roles, output_scale=roles.scale, notes=tuple(notes))


def _refuse(where: str, what: str, kept: int) -> None:
    raise RecipeError(f"{where}: the detection limits read from the graph are not what it does: {what}",
                      hint=f"give the limit as an option (--keep-top-k {kept} if it caps every image at {kept}; "
                           "--top-k for candidates per class)")
