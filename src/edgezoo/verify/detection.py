"""Detection parity: an original detector vs its conversion, on real photographs, compared on their common domain.

Both models see the same pixels: each image is resized as the card says (for SSD-MobileNet: directly to 300x300,
truncated to uint8 as the MLPerf reference does); a uint8 model gets those pixels (its own in-graph resize is then
an identity), a float model gets them normalised. Each model post-processes on its own (the original's NMS, the
TFLite op, or a prototxt's semantics). Detections are matched per class by IoU (detection.detections).

The comparison is never partial: the converted model's output is compared with the original's COMPLETE output at
the original's own limits (its score threshold and slot count; the converted side is restricted to them, since a
conversion may hold more slots or score lower). When the converted model's own limits (read from the graph or a
config, i.e. defaults) drop detections the original keeps, those count as unmatched and parity fails with the
figure. Only limits the user CHOSE (`chosen`: --keep-top-k, --top-k, --score-threshold, ...) restrict the original
too (the common domain: scores >= the higher threshold, the top K of the smaller slot count); the report then states
what the chosen options leave out of the original's output.
Other expected differences are made explicit instead of hidden:
- clipping: the OD API clips boxes to the image before NMS, TFLite_Detection_PostProcess does not; converted boxes
  are clipped before matching and the number that extended outside is reported;
- NMS flavour: fast NMS keeps one class per anchor (class-agnostic suppression) -- differences are then expected
  and the report says so.
Checks (tolerances from the card): detections exist, matched fraction of the original's and of the converted
detections, worst box coordinate error and worst score error of matched pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.core.report import shortest_float32
from edgezoo.datasets.images import verification_images
from edgezoo.detection.detections import Detections, match_detections
from edgezoo.verify.detectors import Detector, Domain, load_detector
from edgezoo.verify.report import ParityReport
from edgezoo.verify.tolerances import DETECTION_TOLERANCES
from edgezoo.zoo.schema import ModelCard, Preprocess


def detection_tolerances(card: ModelCard | None, tolerances: Mapping[str, float] | None) -> dict[str, float]:
    """Defaults, then the card's, then the caller's (other tasks' tolerances are ignored: a recipe hands over the
    card's whole set; user-given names are checked where they enter, verify_models / verify_with_prototxt)."""
    tol = dict(DETECTION_TOLERANCES)
    for source in (card.tolerances if card is not None else {}, tolerances or {}):
        tol.update({k: float(v) for k, v in source.items() if k in DETECTION_TOLERANCES})
    return tol


def _default_spec(card: ModelCard | None) -> Preprocess:
    if card is not None:
        return card.preprocess
    return Preprocess(resize=(300, 300), resize_mode="direct", interpolation="linear", crop=None, color="RGB",
                      mean=(127.5,) * 3, scale=(1 / 127.5,) * 3, layout="NHWC", dtype="uint8")


def common_domain(original: Domain, converted: Domain) -> tuple[float | None, int | None]:
    thresholds = [d.threshold for d in (original, converted) if d.threshold is not None]
    slots = [d.slots for d in (original, converted) if d.slots is not None]
    return (max(thresholds) if thresholds else None), (min(slots) if slots else None)


def _restrict(dets: Detections, threshold: float | None, k: int | None) -> tuple[Detections, Detections]:
    """(inside, outside) of the common domain."""
    order = np.argsort(-dets.scores, kind="stable")
    keep = np.zeros(len(dets), dtype=bool)
    ranked = order if threshold is None else order[dets.scores[order] >= threshold - 1e-7]
    keep[ranked[:k] if k is not None else ranked] = True

    def pick(mask: np.ndarray) -> Detections:
        return Detections(dets.boxes[mask], dets.scores[mask], dets.classes[mask])

    return pick(keep), pick(~keep)


def _clip(dets: Detections) -> tuple[Detections, int]:
    outside = int(((dets.boxes < 0) | (dets.boxes > 1)).any(axis=1).sum()) if len(dets) else 0
    return Detections(np.clip(dets.boxes, 0.0, 1.0), dets.scores, dets.classes), outside


def _at_border(dets: Detections, indices: Sequence[int], eps: float = 1e-6) -> int:
    """How many of the given detections touch the image border (where clipping changes NMS)."""
    if not len(indices):
        return 0
    b = dets.boxes[list(indices)]
    return int(((b <= eps) | (b >= 1 - eps)).any(axis=1).sum())


def _fmt_scores(items: Sequence[tuple[int, float, int]], limit: int = 4) -> str:
    shown = ", ".join(f"{s:.3f} (class {c})" for _, s, c in sorted(items, key=lambda u: -u[1])[:limit])
    return shown + (f", +{len(items) - limit} more" if len(items) > limit else "")


def comparison_domain(original: Domain, converted: Domain, chosen: Mapping[str, Any] | None
                      ) -> tuple[tuple[float | None, int | None], tuple[float | None, int | None]]:
    """((threshold, slots) the original is restricted to, (threshold, slots) the converted is restricted to).

    Without chosen limits: the original's own domain for both (the converted side falls back on its own threshold
    when the original's is unknown), so whatever the converted model's limits drop stays in the comparison.
    With chosen limits: the common domain for both."""
    if chosen:
        common = common_domain(original, converted)
        return common, common
    own = (original.threshold, original.slots)
    return own, (original.threshold if original.threshold is not None else converted.threshold, original.slots)


def _beyond(dets: Detections, threshold: float | None, k: int | None) -> int:
    """How many of `dets` a detector limited to (threshold, k) cannot report."""
    return len(_restrict(dets, threshold, k)[1])


def compare_detectors(original: Detector, converted: Detector, images: Sequence[tuple[str, np.ndarray]],
                      tol: Mapping[str, float], standin: bool = False,
                      chosen: Mapping[str, Any] | None = None) -> ParityReport:
    """Run both detectors on the images and build the report (see the module docstring). `chosen`: the output limits
    the user set explicitly (option as spelled -> value); empty = the converted model's limits are defaults and must
    not drop anything the original keeps."""
    chosen = dict(chosen or {})
    (threshold, k), (conv_threshold, conv_k) = comparison_domain(original.domain, converted.domain, chosen)
    runs = [(name, original.run(image), converted.run(image)) for name, image in images]
    # The OD API clips boxes to the image before NMS, TFLite_Detection_PostProcess / TIDL do not: when the
    # original never leaves [0, 1] and the converted does, compare the converted boxes clipped.
    def inside(d: Detections) -> bool:
        return not len(d) or bool(((d.boxes >= 0) & (d.boxes <= 1)).all())

    clip = all(inside(r) for _, r, _ in runs) and not all(inside(c) for _, _, c in runs)
    report = ParityReport(original=original.name, converted=converted.name, task="detection", standin=standin)
    report.notes += original.notes + converted.notes
    per_image: list[dict[str, Any]] = []
    tot = {"original": 0, "converted": 0, "matched": 0, "outside_original": 0, "outside_converted": 0,
           "clipped": 0, "unmatched_at_border": 0, "original_beyond_converted_limits": 0,
           "original_below_converted_threshold": 0, "original_beyond_converted_slots": 0}
    worst_box = worst_score = 0.0
    unmatched_ref: list[tuple[int, float, int]] = []
    unmatched_conv: list[tuple[int, float, int]] = []
    for name, ref_all, conv_all in runs:
        clipped = 0
        if clip:
            conv_all, clipped = _clip(conv_all)
        ref, ref_out = _restrict(ref_all, threshold, k)
        conv, conv_out = _restrict(conv_all, conv_threshold, conv_k)
        # what the converted model's own limits cannot report of the compared original detections (the figure that
        # says a limit drops the original's output; with chosen limits it is 0 by construction)
        beyond = _beyond(ref, converted.domain.threshold, converted.domain.slots)
        tot["original_beyond_converted_limits"] += beyond
        tot["original_below_converted_threshold"] += _beyond(ref, converted.domain.threshold, None)
        tot["original_beyond_converted_slots"] += _beyond(ref, None, converted.domain.slots)
        m = match_detections(ref, conv, tol["match_iou"])
        tot["original"] += m.reference_count
        tot["converted"] += m.converted_count
        tot["matched"] += m.matched
        tot["outside_original"] += len(ref_out)
        tot["outside_converted"] += len(conv_out)
        tot["clipped"] += clipped
        worst_box, worst_score = max(worst_box, m.worst_box_error), max(worst_score, m.worst_score_error)
        unmatched_ref += m.unmatched_reference
        unmatched_conv += m.unmatched_converted
        tot["unmatched_at_border"] += _at_border(ref, [i for i, _, _ in m.unmatched_reference]) + \
            _at_border(conv, [i for i, _, _ in m.unmatched_converted])
        per_image.append({
            "input": name, "original": m.reference_count, "converted": m.converted_count, "matched": m.matched,
            "worst_box_error": m.worst_box_error, "worst_score_error": m.worst_score_error,
            "outside_domain_original": len(ref_out), "outside_domain_converted": len(conv_out),
            "original_beyond_converted_limits": beyond,
            "converted_boxes_clipped": clipped,
            "unmatched_original": [(s, c) for _, s, c in sorted(m.unmatched_reference, key=lambda u: -u[1])[:8]],
            "unmatched_converted": [(s, c) for _, s, c in sorted(m.unmatched_converted, key=lambda u: -u[1])[:8]]})
        report.inputs.append(name)
    ref_frac = tot["matched"] / tot["original"] if tot["original"] else 1.0
    conv_frac = tot["matched"] / tot["converted"] if tot["converted"] else 1.0
    report.add("original_detections", tot["original"], 1, "min")  # parity on nothing proves nothing
    report.add("matched_fraction_of_original", ref_frac, tol["min_matched_fraction"], "min")
    report.add("matched_fraction_of_converted", conv_frac, tol["min_matched_fraction"], "min")
    report.add("max_box_error", worst_box, tol["max_box_error"])
    report.add("max_score_error", worst_score, tol["max_score_error"])
    report.metrics["detection"] = {
        "images": per_image, "match_iou": tol["match_iou"], "common_threshold": threshold, "common_slots": k,
        "compared": "common domain (chosen limits)" if chosen else "the original's complete output at its own limits",
        "chosen_limits": chosen,
        "original": {"description": original.description, "threshold": original.domain.threshold,
                     "threshold_source": original.domain.threshold_source, "slots": original.domain.slots,
                     "nms": original.domain.nms},
        "converted": {"description": converted.description, "threshold": converted.domain.threshold,
                      "threshold_source": converted.domain.threshold_source, "slots": converted.domain.slots,
                      "nms": converted.domain.nms},
        "converted_compared_clipped": clip,
        **{f"total_{key}": value for key, value in tot.items()}}
    report.metrics["tolerances"] = dict(tol)
    if chosen:
        # the original's output at its own limits, and how much of it the chosen (common) domain leaves out
        own_outputs = [_restrict(r, original.domain.threshold, original.domain.slots)[0] for _, r, _ in runs]
        own = sum(len(d) for d in own_outputs)
        left_out = sum(_beyond(d, threshold, k) for d in own_outputs)
        report.metrics["detection"]["chosen_limits_cost"] = {
            "original_detections": own, "left_out": left_out, "fraction_left_out": left_out / own if own else 0.0}
    _explain(report, original, converted, threshold, k, tot, unmatched_ref, unmatched_conv, clip, chosen)
    return report


def _options(chosen: Mapping[str, Any]) -> str:
    return ", ".join(name if value is True else f"{name} {value}" for name, value in chosen.items())


def _explain(report: ParityReport, original: Detector, converted: Detector, threshold: float | None,
             k: int | None, tot: Mapping[str, int], unmatched_ref: list, unmatched_conv: list, clip: bool,
             chosen: Mapping[str, Any]) -> None:
    notes = report.notes
    o, c = original.domain, converted.domain
    if chosen:
        cost = report.metrics["detection"]["chosen_limits_cost"]
        notes.append(f"the chosen options ({_options(chosen)}) leave out {cost['left_out']} of the original's "
                     f"{cost['original_detections']} detections ({cost['fraction_left_out']:.1%}); compared within "
                     "them as asked")
    elif tot["original_beyond_converted_limits"]:
        limits = []
        if tot["original_below_converted_threshold"]:
            limits.append(f"score threshold {c.threshold:.4g}")
        if tot["original_beyond_converted_slots"]:
            limits.append(f"{c.slots} detections per image")
        notes.append(f"the converted model's default limits ({' and '.join(limits) or 'its limits'}) drop "
                     f"{tot['original_beyond_converted_limits']} of the original's {tot['original']} detections: "
                     "they are compared (unmatched), not left out; if the limits were read wrongly, give them as "
                     "options (e.g. --keep-top-k, --score-threshold), which then restrict the comparison and say "
                     "what they cost")
    if threshold is not None or k is not None:
        parts = []
        if threshold is not None:
            def shown(value: float | None) -> str:
                return "unknown" if value is None else f"{shortest_float32(value):g}"

            parts.append(f"scores >= {threshold:.4g} (original: {shown(o.threshold)}"
                         f"{' from ' + o.threshold_source if o.threshold_source else ''}; converted: "
                         f"{shown(c.threshold)})")
        if k is not None:
            held = [s if s is not None else "no fixed number" for s in (o.slots, c.slots)]
            parts.append(f"the top {k} per image (original holds {held[0]}, converted {held[1]})")
        where = "on the common domain (the chosen options)" if chosen else "at the original's own limits"
        notes.append(f"compared {where}: " + " and ".join(parts) + f"; outside it: {tot['outside_original']} "
                     f"original and {tot['outside_converted']} converted detections")
    if o.threshold is None:
        notes.append("the original's score threshold is unknown (it is read from a pipeline.config beside a frozen "
                     "graph): " + ("its detections are compared above the chosen threshold only" if chosen else
                                   "all its detections are compared, the converted ones above its own threshold"))
    if clip:
        notes.append(f"{tot['clipped']} converted boxes extended outside the image: the converted post-processing "
                     "does not clip (TFLite_Detection_PostProcess, TIDL), the original's boxes all lie inside it (the "
                     "OD API clips to the image window before NMS); compared after clipping (NMS on clipped boxes "
                     "can keep or drop a different box near the border)")
    if "fast" in c.nms and "fast" not in o.nms:
        notes.append("the converted model uses fast NMS (one class per anchor, class-agnostic suppression): "
                     "it drops detections the original's per-class NMS keeps; use regular NMS for parity")
    if unmatched_ref:
        notes.append(f"unmatched original detections: {len(unmatched_ref)}: {_fmt_scores(unmatched_ref)}")
    if unmatched_conv:
        notes.append(f"unmatched converted detections: {len(unmatched_conv)}: {_fmt_scores(unmatched_conv)}")
    if clip and tot["unmatched_at_border"]:
        notes.append(f"{tot['unmatched_at_border']} of the {len(unmatched_ref) + len(unmatched_conv)} unmatched "
                     "detections touch the image border, where the original's clipping before NMS changes which "
                     "overlapping box survives")
    if threshold is not None and (unmatched_ref or unmatched_conv):
        near = [s for _, s, _ in unmatched_ref + unmatched_conv if s - threshold < 0.01]
        if near:
            notes.append(f"{len(near)} of the unmatched detections score within 0.01 of the threshold "
                         f"{threshold:.4g}: numerical noise moves them across it")


def verify_detection_models(original: Path, converted: Path, card: ModelCard | None = None,
                            tolerances: Mapping[str, float] | None = None, *,
                            images: Sequence[tuple[str, np.ndarray]] | None = None, standin: bool = False,
                            prototxt: Any = None, original_threshold: float | None = None,
                            original_slots: int | None = None, count_random: int = 2, seed: int = 0,
                            chosen: Mapping[str, Any] | None = None, **_: Any) -> ParityReport:
    """Detection parity between two model files (see the module docstring).

    `prototxt`: a caffe_ssd meta-architecture (path or parsed MetaArch) when `converted` is an ONNX cut at the heads.
    `original_threshold`/`original_slots`: what the original's post-processing keeps (e.g. from pipeline.config);
    by default read from a pipeline.config beside a frozen graph, else unknown.
    """
    spec = _default_spec(card)
    ref = load_detector(Path(original), spec, card=card, threshold=original_threshold,
                        threshold_source="pipeline.config" if original_threshold is not None else "")
    if original_slots is not None:
        ref.domain.slots = original_slots
    conv = None
    try:
        conv = load_detector(Path(converted), spec, card=card, prototxt=prototxt)
        if images is None:
            images = verification_images(count_random=count_random, seed=seed)
        return compare_detectors(ref, conv, images, detection_tolerances(card, tolerances), standin=standin,
                                 chosen=chosen)
    finally:  # a TF session holds the graph's buffers until closed
        for detector in (ref, conv):
            if detector is not None:
                detector.close()
