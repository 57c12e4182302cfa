"""Recipe `ssd-onnx-meta-arch`: an ONNX SSD for TIDL's caffe_ssd meta-architecture (MLPerf ResNet34-SSD1200).

1. The input is fixed to 1 x 3 x H x W (params.input_size) and shapes are inferred; the original outputs are kept:
   TIDL runs the graph up to the heads and replaces the rest (decoding, softmax, NMS) by its own detection layer,
   but the importer wants the prototxt's `output` list to equal the graph's outputs.
2. The box/class heads are found by structure (graphs.onnx_heads), in prior order; names TIDL cannot take are
   renamed consistently (recorded in the manifest and notes).
3. meta_arch.prototxt: one prior_box_param per head from the card's default-box spec (steps image/grid, so prior
   centres equal MLPerf's), thresholds from params; validated against the graph before it is written.
4. Verified: the reference executor applies the prototxt to the heads on real photographs and its detections are
   matched with the original model's own (tidl.meta_arch.verify); export exits 1 beyond the card's tolerances.
5. runtime_options: object_detection:meta_arch_type 3, meta_layers_names_list = the prototxt's file name in the
   bundle, and the thresholds.

Priors: 18 of MLPerf's 15130 default boxes are clamped to [0, 1], which Caffe priors cannot express (largest
difference 0.2304). `--param fold_clamped_priors=true` folds the size ratios into the box convs
(tidl.meta_arch.prior_fold) so TIDL decodes them exactly; model.onnx's own in-graph tail then differs for those
priors (TIDL replaces it).

Thresholds: the defaults reproduce MLPerf's own post-processing (confidence 0.05, NMS 0.5, keep_top_k 200) and
nms_param.top_k is every prior (15130): Caffe/TIDL cap candidates per class BEFORE NMS while the original's
NonMaxSuppression keeps 200 per class AFTER it, so top_k 200 loses detections on crowded pictures (3-6 % on the
crowded stand-in). TI's benchmark speed settings stay options (`--confidence-threshold 0.3`, `--top-k 200`); choosing
one measures its parity loss against the exact defaults and says it (verification compares like with like).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgezoo.bundle.config import (META_ARCH_ONNX_SSD, PROTOTXT, coco80_label_map, outputs_postprocess,
                                   ssd_runtime_options)
from edgezoo.core.errors import ConfigError, RecipeError
from edgezoo.graphs import onnx_model
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.onnx_ssd import speed_loss_note
from edgezoo.recipes.params import MAX_DETECTION_SLOTS, SLOTS_WHY, ParamSpec, ParamType, chosen_limits
from edgezoo.recipes.ssd_mobilenet import MAX_CLASSES
from edgezoo.ssd.onnx_heads import find_heads, fix_image_input, head_notes, sanitize_head_names
from edgezoo.tidl.meta_arch.generate import Thresholds, meta_arch_from_heads
from edgezoo.tidl.meta_arch.prior_fold import fold_clamped_priors
from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, compare_priors
from edgezoo.tidl.meta_arch.prototxt import save_meta_arch
from edgezoo.tidl.meta_arch.validate import check_meta_arch
from edgezoo.verify.meta_arch import parity_loss, verify_with_prototxt
from edgezoo.verify.tolerances import DETECTION, known
from edgezoo.zoo.schema import ModelFormat

EXACT_CONFIDENCE = 0.05  # MLPerf's NonMaxSuppression score threshold


def _thresholds(params: Mapping[str, Any], priors: int) -> Any:
    """The prototxt's thresholds; top_k not given = every prior (the only value that reproduces the original)."""
    top_k = params["top_k"] if params.get("top_k") is not None else priors
    return Thresholds(confidence_threshold=params["confidence_threshold"], nms_threshold=params["nms_threshold"],
                      top_k=top_k, keep_top_k=params["keep_top_k"])


def runtime_options(thresholds: Any) -> dict[str, Any]:
    return ssd_runtime_options(META_ARCH_ONNX_SSD, confidence=thresholds.confidence_threshold,
                               nms=thresholds.nms_threshold, top_k=thresholds.top_k, keep_top_k=thresholds.keep_top_k,
                               prototxt=PROTOTXT)


def _config(outputs: list[str]) -> dict[str, Any]:
    """TI's post-processing for the model's own outputs (boxes x1y1x2y2 normalised, labels 1..80, scores), with
    MLPerf's score threshold as TI's detection_threshold (TI's settings would filter at 0.3)."""
    return {"postprocess": outputs_postprocess(outputs, yxyx=False, threshold=EXACT_CONFIDENCE),
            "metric": {"label_offset_pred": coco80_label_map()}}


def _default_boxes(params: Mapping[str, Any], where: str = "recipe params") -> Any:
    """The card's default-box spec (input size, steps, scales, ratios, variances), checked for consistency."""
    try:
        return DefaultBoxSpec.from_params(params, where=where)
    except ConfigError as exc:
        raise RecipeError(str(exc)) from None


# 1200 x 1200 is the published input; 4096 per side keeps one float32 input (192 MiB) within recipes/params.py's
# MAX_INPUT_ELEMENTS.
MAX_SIDE = 4096
PARAMS = (
    ParamSpec("input_size", ParamType.SIZE, "the fixed input height and width (default boxes are in these pixels)",
              low=1, high=MAX_SIDE, why_high="3 x 4096 x 4096 float32 is 192 MiB, allocated when the model loads",
              default_text="the card's (1200 x 1200)"),
    ParamSpec("steps", ParamType.NUMBERS, "per head: the prior spacing in input pixels", low=0, low_open=True,
              default_text="the card's"),
    ParamSpec("scales", ParamType.NUMBERS, "default-box sizes in input pixels (heads + 1)", low=0, low_open=True,
              default_text="the card's"),
    ParamSpec("aspect_ratios", ParamType.NUMBER_LISTS, "per head: the extra aspect ratios", low=0, low_open=True,
              default_text="the card's"),
    ParamSpec("variances", ParamType.NUMBERS, "box-coder variances (4 values)", low=0, low_open=True,
              default=(0.1, 0.1, 0.2, 0.2)),
    ParamSpec("num_classes", ParamType.INT, "classes including background", low=2, high=MAX_CLASSES,
              why_high="no detection set has more classes", default_text="the card's labels"),
    ParamSpec("confidence_threshold", ParamType.FLOAT, "TIDL object_detection:confidence_threshold (TI's speed "
              "setting: 0.3)", default=0.05, low=0.0, high=1.0, high_open=True),
    ParamSpec("nms_threshold", ParamType.FLOAT, "NMS IoU threshold", default=0.5, low=0.0, high=1.0, low_open=True),
    ParamSpec("top_k", ParamType.INT, "candidates per class before NMS (TIDL object_detection:top_k; TI's speed "
              "setting: 200)", default_text="every prior (15130): exact", low=1, high=MAX_DETECTION_SLOTS,
              why_high=SLOTS_WHY),
    ParamSpec("keep_top_k", ParamType.INT, "detections kept after NMS (TIDL object_detection:keep_top_k)",
              default=200, low=1, high=MAX_DETECTION_SLOTS, why_high=SLOTS_WHY),
    ParamSpec("fold_clamped_priors", ParamType.BOOL, "fold MLPerf's clamped prior sizes into the box heads so TIDL "
              "decodes them exactly", default=False),
)


@register("ssd-onnx-meta-arch", params=PARAMS, precheck=_default_boxes,
          summary="ResNet34-SSD's ONNX -> ONNX + meta_arch.prototxt from the card's default boxes, verified")
def ssd_onnx_meta_arch(rin: RecipeInput) -> RecipeOutput:
    card = rin.card
    if card is None:
        raise RecipeError("ssd-onnx-meta-arch needs a model card (the default-box spec lives there)")
    fmt = card.format(ModelFormat.ONNX)
    source = rin.source(fmt.file, fmt.member)
    spec = _default_boxes(rin.params, where=f"{card.id}: recipe params")
    num_classes = rin.params.get("num_classes")
    num_classes = card.labels.num_classes if num_classes is None else num_classes
    height, width = spec.input_size

    model = onnx_model.infer_shapes(fix_image_input(onnx_model.load(source), height, width))
    heads = find_heads(model, num_classes, where=fmt.file)
    model, heads = sanitize_head_names(model, heads)
    thresholds = _thresholds(rin.params, heads.num_priors or spec.num_priors())
    exact = _thresholds({**rin.params, "top_k": None, "confidence_threshold": EXACT_CONFIDENCE},
                        heads.num_priors or spec.num_priors())
    outputs = onnx_model.output_names(model)
    meta = meta_arch_from_heads(heads, spec, outputs, thresholds, where=fmt.file)
    warnings = check_meta_arch(meta, model, where=PROTOTXT)
    cmp = compare_priors(spec, meta.single_ssd().prior_box_param)
    fold = None
    if rin.params["fold_clamped_priors"]:
        model, fold = fold_clamped_priors(model, heads, meta.single_ssd(), spec)

    workdir = Path(rin.workdir)
    model_path = onnx_model.save(model, workdir / "model.onnx")
    prototxt = save_meta_arch(meta, workdir / PROTOTXT)
    # Only the detection tolerances apply here (the card's may list others for other routes).
    tolerances = {k: v for k, v in rin.tolerances.items() if k in known(DETECTION)}
    report = verify_with_prototxt(model_path, prototxt, original=source, card=card, tolerances=tolerances,
                                  standin=rin.standin, meta=meta, chosen=chosen_limits(rin.params, PARAMS))

    notes = head_notes(heads)
    notes += [f"prototxt warning: {w}" for w in warnings]
    if fold is not None:
        notes.append(f"folded the MLPerf/TIDL prior size ratios of {len(fold.anchors)} anchors ({fold.priors} priors) "
                     "into the box heads: TIDL now decodes MLPerf's clamped boxes exactly; model.onnx's own in-graph "
                     "post-processing differs from the original for those priors (TIDL replaces it)")
        notes += [f"not folded: {u}" for u in fold.unfoldable]
    elif cmp.differing_priors:
        notes.append(f"{cmp.differing_priors} priors cannot be expressed in Caffe semantics (largest difference "
                     f"{cmp.max_abs_diff:.4g}); --param fold_clamped_priors=true folds the size ratios into the box "
                     "heads so TIDL decodes them exactly")
    loss = None
    if thresholds != exact:
        exact_meta = meta_arch_from_heads(heads, spec, outputs, exact, where=fmt.file)
        loss = parity_loss(model_path, source, {"exact": exact_meta, "chosen": meta}, card=card)
        notes.append(speed_loss_note(loss))
    notes.append(f"nms_param.top_k {thresholds.top_k}" + (" = every prior: Caffe/TIDL cap candidates per class BEFORE "
                 "NMS, the original's NonMaxSuppression caps AFTER it" if thresholds.top_k == exact.top_k else
                 "") + "; TI's speed thresholds: --confidence-threshold 0.3 --top-k 200 (exact: 0.05 / every prior)")
    report.notes += [n for n in notes if n not in report.notes]
    params = {"thresholds": vars(thresholds), "speed_setting_parity": loss, "heads": {"box_input": heads.box_inputs,
                                                        "class_input": heads.class_inputs,
                                                        "layout": heads.layout.name, "renamed": dict(heads.renamed)},
              "priors": {"max_abs_diff": cmp.max_abs_diff, "where": cmp.where,
                         "differing_priors": cmp.differing_priors},
              "fold_clamped_priors": None if fold is None else {"anchors": fold.anchors, "priors": fold.priors,
                                                                 "unfoldable": fold.unfoldable}}
    return RecipeOutput(model=model_path, verify=report, cut=outputs,
                        cut_reason="original outputs kept; TIDL replaces the part after the heads",
                        extra_files={PROTOTXT: prototxt}, runtime_options=runtime_options(thresholds),
                        config=_config(outputs), params=params, original=source,
                        notes=notes)
