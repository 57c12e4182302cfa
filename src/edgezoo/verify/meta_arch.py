"""Prove that a meta-architecture prototxt reproduces the original model's detections.

`verify_with_prototxt(model.onnx, meta_arch.prototxt, original=...)`: validate the prototxt against the graph
(ConfigError, exit 2, listing every problem), run the ONNX model up to the heads on real photographs (ONNX Runtime,
heads as extra outputs), apply the prototxt with the reference executor (tidl.meta_arch.execute) and compare its
detections with the original model's own (verify.detection.compare_detectors: IoU-matched per class, matched fraction
both ways, worst box and score error, checked against the card's tolerances; VerificationFailed / exit 1 beyond them,
via ParityReport.passed).

The original is any detector verify/detectors.py reads: the same ONNX's own outputs (one-model form, e.g. the
ResNet34-SSD whose model.onnx keeps bboxes/labels/scores), the published ONNX, or a frozen graph (SSD-MobileNet:
uint8 NHWC image_tensor in, the OD API's four outputs, its score threshold from the pipeline.config beside it).
Each model is fed the same resized image in its own input layout and dtype. The original's complete output is
compared at its own limits: a prototxt stricter than the original (a higher confidence_threshold or a lower
keep_top_k) fails, unless the user chose those limits (`chosen`, e.g. TI's speed setting 0.3): then both are
compared on the common domain and the report states what the choice leaves out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.bundle.provenance import is_standin
from edgezoo.core.errors import EdgezooError
from edgezoo.datasets.images import verification_images
from edgezoo.detection.detections import match_detections
from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, compare_priors
from edgezoo.tidl.meta_arch.prototxt import CaffeSsd, load_meta_arch
from edgezoo.verify import tolerances as tol_names
from edgezoo.verify.detection import compare_detectors, detection_tolerances
from edgezoo.verify.detectors import load_detector, meta_arch_detector
from edgezoo.verify.report import ParityReport
from edgezoo.zoo.schema import ModelCard, ModelFormat, Preprocess, Target


def _preprocess(card: ModelCard | None, ssd: CaffeSsd) -> Preprocess:
    """The card's resize and normalisation, else the prototxt's input size with [-1, 1] scaling. Layout and dtype
    are each model's own (verify.detectors.image_feed)."""
    if card is not None:
        return card.preprocess
    # Unset sizes only: a given 0 or negative size is reported by the prototxt validation, never replaced.
    h = 300 if ssd.in_height is None else ssd.in_height
    w = 300 if ssd.in_width is None else ssd.in_width
    return Preprocess(resize=(h, w), resize_mode="direct", interpolation="linear", crop=None, color="RGB",
                      mean=(127.5,) * 3, scale=(1 / 127.5,) * 3, layout="NCHW")


def _onnx_params(card: ModelCard | None) -> Mapping[str, Any]:
    """The card's ONNX recipe params (empty without a card or an ONNX recipe)."""
    spec = card.recipes.get(Target.ONNX) if card is not None else None
    return spec.params if spec is not None else {}


def verify_with_prototxt(onnx_path: Path, prototxt_path: Path, *, original: Path | None = None,
                         card: ModelCard | None = None, tolerances: Mapping[str, float] | None = None,
                         count_random: int = 2, seed: int = 0, standin: bool | None = None,
                         images: Sequence[tuple[str, np.ndarray]] | None = None,
                         meta: Any = None, preprocess: Preprocess | None = None,
                         chosen: Mapping[str, Any] | None = None, reference: Any = None,
                         transform: Any = None) -> ParityReport:
    """Validate, execute and compare; see the module docstring. `original` defaults to `onnx_path` itself. `meta`
    (a parsed MetaArch) overrides the file's contents (the recipe passes the one it generated and wrote);
    `preprocess` overrides the card's (a user's own model has no card); `chosen`: the output limits the user set
    (verify.detection.compare_detectors); `reference`: the original as a ready Detector (its outputs and limits
    found by other means than a card); `transform`: image -> the converted model's input tensor
    (verify.detectors.image_feed)."""
    onnx_path, prototxt_path = Path(onnx_path), Path(prototxt_path)
    if ModelFormat.of(onnx_path) is not ModelFormat.ONNX:
        raise EdgezooError(f"{onnx_path}: the prototxt decodes an ONNX model cut at the SSD heads, not a "
                           f"{onnx_path.suffix or 'suffix-less'} file",
                           hint="give ORIGINAL first, then the converted .onnx: verify ORIGINAL model.onnx "
                                "--prototxt meta_arch.prototxt")
    tol_names.check_names(tolerances or {}, tol_names.DETECTION)  # before any model is loaded
    tol = detection_tolerances(card, tolerances)
    meta = meta if meta is not None else load_meta_arch(prototxt_path)
    ssd = meta.single_ssd(prototxt_path.name)
    spec = preprocess if preprocess is not None else _preprocess(card, ssd)
    converted = meta_arch_detector(onnx_path, meta, spec, where=prototxt_path.name,  # validates the prototxt
                                   transform=transform)
    original = onnx_path if original is None else Path(original)
    if reference is None:
        reference = load_detector(original, spec, card=card)
    if standin is None:
        standin = is_standin(onnx_path) or is_standin(original)
    images = list(images) if images is not None else verification_images(count_random, seed)

    report = compare_detectors(reference, converted, images, tol, standin=standin, chosen=chosen)
    report.original = str(original)
    if not report.metrics["detection"]["total_original"]:
        report.notes.append("the original detected nothing on these inputs: check the preprocessing "
                            "(give --model CARD) before trusting any figure")
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


def parity_loss(onnx_path: Path, original: Path, metas: Mapping[str, Any], *, card: ModelCard | None = None,
                images: Sequence[tuple[str, np.ndarray]] | None = None, match_iou: float = 0.5,
                preprocess: Preprocess | None = None, reference: Any = None,
                transform: Any = None) -> dict[str, dict[str, float]]:
    """Per prototxt setting (label -> MetaArch): how many of the original's detections -- all of them, at the
    original's own threshold, no common-domain restriction -- its detections reproduce (same class, IoU >=
    match_iou). This is what a speed setting (TI's top_k 200 / confidence 0.3) costs against the exact defaults."""
    first = next(iter(metas.values()))
    spec = preprocess if preprocess is not None else _preprocess(card, first.single_ssd())
    reference = reference if reference is not None else load_detector(Path(original), spec, card=card)
    detectors = {label: meta_arch_detector(Path(onnx_path), meta, spec, transform=transform)
                 for label, meta in metas.items()}
    totals = {label: {"original": 0, "converted": 0, "matched": 0} for label in metas}
    for _, image in (list(images) if images is not None else verification_images(2, 0)):
        ref = reference.run(image)
        for label, detector in detectors.items():
            m = match_detections(ref, detector.run(image), match_iou)
            totals[label]["original"] += m.reference_count
            totals[label]["converted"] += m.converted_count
            totals[label]["matched"] += m.matched
    return {label: {**t, "matched_fraction": t["matched"] / t["original"] if t["original"] else 1.0}
            for label, t in totals.items()}
