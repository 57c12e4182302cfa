"""Prove that a meta-architecture prototxt reproduces the original model's detections.

`verify_with_prototxt(model.onnx, meta_arch.prototxt)`: validate the prototxt against the graph (ConfigError, exit 2,
listing every problem), run the ONNX model up to the heads on real photographs (ONNX Runtime, heads as extra
outputs), apply the prototxt with the reference executor (meta_exec) and compare its detections with the original
model's own bboxes/labels/scores (IoU-matched per class): matched fraction both ways, worst box and score error,
checked against the card's tolerances (VerificationFailed / exit 1 beyond them, via ParityReport.passed).

When the prototxt is stricter than the original (a higher confidence_threshold or a lower keep_top_k, e.g. TI's
speed setting 0.3), the original's detections are filtered the same way first: like is compared with like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.detection.meta_exec import MetaArchExecutor
from edgezoo.detection.meta_validate import check_meta_arch
from edgezoo.detection.prototxt import CaffeSsd, load_meta_arch
from edgezoo.errors import EdgezooError, ModelFileError
from edgezoo.verify.detection_match import Detections, match_detections
from edgezoo.verify.report import ParityReport
from edgezoo.zoo.schema import ModelCard, Preprocess

DETECTION_TOLERANCES: dict[str, float] = {
    "match_iou": 0.9,  # IoU for two detections of the same class to count as the same
    "min_matched_fraction": 0.95,  # both ways: original found by the prototxt, prototxt's explained by the original
    "max_box_error": 0.01,  # worst coordinate difference of a matched pair (normalised)
    "max_score_error": 0.01,
}
# Output names of the published detectors: (boxes, classes, scores, count or None, box order)
_KNOWN_OUTPUTS = (("bboxes", "labels", "scores", None, "xyxy"),  # MLPerf ResNet34-SSD (PyTorch)
                  ("detection_boxes", "detection_classes", "detection_scores", "num_detections", "yxyx"))


def detection_tolerances(card: ModelCard | None, overrides: Mapping[str, float] | None) -> dict[str, float]:
    tol = dict(DETECTION_TOLERANCES)
    if card is not None:
        tol.update({k: v for k, v in card.tolerances.items() if k in DETECTION_TOLERANCES})
    for key, value in (overrides or {}).items():
        if key not in DETECTION_TOLERANCES:
            raise EdgezooError(f"unknown tolerance {key!r} for prototxt verification",
                               hint="known: " + ", ".join(DETECTION_TOLERANCES))
        tol[key] = float(value)
    return tol


def _preprocess(card: ModelCard | None, ssd: CaffeSsd) -> Preprocess:
    if card is not None:
        return card.preprocess
    h, w = ssd.in_height or 300, ssd.in_width or 300
    return Preprocess(resize=(h, w), resize_mode="direct", interpolation="linear", crop=None, color="RGB",
                      mean=(127.5,) * 3, scale=(1 / 127.5,) * 3, layout="NCHW")


def _reference_names(outputs: Sequence[str], card: ModelCard | None) -> tuple[str, str, str, str | None, str]:
    if card is not None:
        from edgezoo.zoo.schema import ModelFormat

        fmt = card.formats.get(ModelFormat.ONNX)
        roles = {t.role: t.name for t in fmt.outputs} if fmt else {}
        if {"boxes", "classes", "scores"} <= set(roles) and all(roles[r] in outputs for r in
                                                                   ("boxes", "classes", "scores")):
            order = "xyxy" if roles["boxes"] == "bboxes" else "yxyx"
            return roles["boxes"], roles["classes"], roles["scores"], roles.get("num_detections"), order
    for boxes, classes, scores, count, order in _KNOWN_OUTPUTS:
        if {boxes, classes, scores} <= set(outputs):
            return boxes, classes, scores, count if count in outputs else None, order
    raise ModelFileError(f"cannot tell the original's boxes/classes/scores among its outputs {list(outputs)}",
                         hint="give --model CARD so the card's output roles are used")


def _reference(out: Mapping[str, np.ndarray], names: tuple[str, str, str, str | None, str]) -> Detections:
    boxes_name, classes_name, scores_name, count_name, order = names
    boxes = np.asarray(out[boxes_name]).reshape(-1, 4)
    classes = np.asarray(out[classes_name]).reshape(-1)
    scores = np.asarray(out[scores_name]).reshape(-1)
    if count_name:
        n = int(np.asarray(out[count_name]).reshape(-1)[0])
        boxes, classes, scores = boxes[:n], classes[:n], scores[:n]
    if order == "xyxy":
        boxes = boxes[:, [1, 0, 3, 2]]
    return Detections(boxes, scores, np.round(classes).astype(np.int64))


def _onnx_params(card: ModelCard | None) -> Mapping[str, Any]:
    """The card's ONNX recipe params (empty without a card or an ONNX recipe)."""
    from edgezoo.zoo.schema import Target

    spec = card.recipes.get(Target.ONNX) if card is not None else None
    return spec.params if spec is not None else {}


def _like_with_like(ref: Detections, ssd: CaffeSsd) -> tuple[Detections, list[str]]:
    """Filter the original's detections to the prototxt's threshold / count (a no-op unless the prototxt is stricter
    than the original), saying so when it removed any."""
    notes = []
    dop = ssd.detection_output_param
    if dop and dop.confidence_threshold is not None:
        kept = ref.above(dop.confidence_threshold)
        if len(kept) < len(ref):
            notes.append(f"original detections compared above the prototxt's confidence_threshold "
                         f"{dop.confidence_threshold}")
        ref = kept
    if dop and dop.keep_top_k is not None and -1 < dop.keep_top_k < len(ref):
        ref = ref.top(dop.keep_top_k)
        notes.append(f"original detections compared up to the prototxt's keep_top_k {dop.keep_top_k}")
    return ref, notes


def verify_with_prototxt(onnx_path: Path, prototxt_path: Path, *, original: Path | None = None,
                         card: ModelCard | None = None, tolerances: Mapping[str, float] | None = None,
                         count_random: int = 2, seed: int = 0, standin: bool | None = None,
                         images: Sequence[tuple[str, np.ndarray]] | None = None,
                         meta: Any = None) -> ParityReport:
    """Validate, execute and compare; see the module docstring. `meta` (a parsed MetaArch) overrides the file's
    contents (the recipe passes the one it generated and wrote)."""
    from edgezoo.graphs import onnx_model
    from edgezoo.images import verification_images
    from edgezoo.preprocess import preprocess
    from edgezoo.runners import load_runner

    onnx_path, prototxt_path = Path(onnx_path), Path(prototxt_path)
    meta = meta if meta is not None else load_meta_arch(prototxt_path)
    ssd = meta.single_ssd(prototxt_path.name)
    model = onnx_model.load(onnx_path)
    warnings = check_meta_arch(meta, model, where=prototxt_path.name)
    executor = MetaArchExecutor(ssd, where=prototxt_path.name)
    tol = detection_tolerances(card, tolerances)
    heads = list(ssd.box_input) + list(ssd.class_input)

    same = original is None or Path(original).resolve() == onnx_path.resolve()
    original = onnx_path if original is None else Path(original)
    graph_outputs = onnx_model.output_names(model)
    if same:
        runner = load_runner(onnx_path, outputs=list(dict.fromkeys(graph_outputs + heads)))
        ref_runner = runner
    else:
        runner = load_runner(onnx_path, outputs=heads)
        ref_runner = load_runner(original)
    names = _reference_names([o.name for o in ref_runner.outputs], card)
    spec = _preprocess(card, ssd)
    if standin is None:
        standin = "standins" in onnx_path.resolve().parts
    report = ParityReport(original=str(original), converted=f"{onnx_path.name} + {prototxt_path.name}",
                          task="detection", standin=standin)
    report.notes += [f"prototxt {p.severity}: {p}" for p in warnings]
    images = list(images) if images is not None else verification_images(count_random, seed)

    per_image = []
    total_ref = total_conv = total_matched = 0
    worst_box = worst_score = 0.0
    for name, image in images:
        feed = {runner.inputs[0].name: preprocess(image, spec, layout=spec.layout)}
        out = runner.run(feed)
        ref_out = out if same else ref_runner.run({ref_runner.inputs[0].name: feed[runner.inputs[0].name]})
        reference = _reference(ref_out, names)
        reference, notes = _like_with_like(reference, ssd)
        for note in notes:
            if note not in report.notes:
                report.notes.append(note)
        converted = executor([out[t] for t in ssd.box_input], [out[t] for t in ssd.class_input]).detections()
        m = match_detections(reference, converted, tol["match_iou"])
        total_ref += m.reference_count
        total_conv += m.converted_count
        total_matched += m.matched
        worst_box, worst_score = max(worst_box, m.worst_box_error), max(worst_score, m.worst_score_error)
        per_image.append({
            "input": name, "original": m.reference_count, "prototxt": m.converted_count, "matched": m.matched,
            "worst_box_error": m.worst_box_error, "worst_score_error": m.worst_score_error,
            "unmatched_original": sorted(m.unmatched_reference, key=lambda u: -u[1])[:5],
            "unmatched_prototxt": sorted(m.unmatched_converted, key=lambda u: -u[1])[:5]})
        report.inputs.append(name)

    ref_frac = total_matched / total_ref if total_ref else 1.0
    conv_frac = total_matched / total_conv if total_conv else 1.0
    report.add("original_detections", total_ref, 1, "min")  # parity on nothing proves nothing
    if not total_ref:
        report.notes.append("the original detected nothing on these inputs: check the preprocessing "
                            "(give --model CARD) before trusting any figure")
    report.add("matched_fraction_of_original", ref_frac, tol["min_matched_fraction"], "min")
    report.add("matched_fraction_of_prototxt", conv_frac, tol["min_matched_fraction"], "min")
    report.add("max_box_error", worst_box, tol["max_box_error"])
    report.add("max_score_error", worst_score, tol["max_score_error"])
    report.metrics["detection"] = {"images": per_image, "match_iou": tol["match_iou"], "original": total_ref,
                                   "prototxt": total_conv, "matched": total_matched}
    _prior_metrics(report, ssd, card)
    report.notes.append("nms_param.top_k limits candidates per class BEFORE NMS (Caffe/TIDL); ONNX "
                        "NonMaxSuppression's max_output_boxes_per_class limits boxes AFTER it")
    return report


def _prior_metrics(report: ParityReport, ssd: CaffeSsd, card: ModelCard | None) -> None:
    """With a card whose ONNX recipe has a default-box spec: how far the prototxt's priors are from the card's
    default boxes (informational)."""
    params = _onnx_params(card)
    if not {"steps", "scales", "aspect_ratios", "input_size"} <= set(params):
        return
    from edgezoo.detection.priors import DefaultBoxSpec, compare_priors

    try:
        spec = DefaultBoxSpec.from_params(params)
        cmp = compare_priors(spec, ssd.prior_box_param)
    except EdgezooError as exc:
        report.notes.append(f"priors not compared with the card's default boxes: {exc}")
        return
    report.metrics["priors"] = {"max_abs_diff": cmp.max_abs_diff, "where": cmp.where,
                                "max_abs_diff_besides_clamping": cmp.max_abs_diff_unclamped,
                                "differing_priors": cmp.differing_priors, "num_priors": cmp.num_priors}
    if cmp.max_abs_diff > 1e-5:
        report.notes.append(f"priors differ from the card's default boxes by up to {cmp.max_abs_diff:.4g} "
                            f"({cmp.where}; {cmp.differing_priors} of {cmp.num_priors} priors): "
                            + "; ".join(cmp.causes))


def with_ssd(meta: Any, **changes: Any) -> Any:
    """A copy of a MetaArch whose caffe_ssd block has `changes` applied (tests and experiments)."""
    return meta.with_ssd(replace(meta.single_ssd(), **changes))
