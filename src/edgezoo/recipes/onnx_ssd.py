"""`export --graph model.onnx --to onnx --meta-arch ssd`: any ONNX SSD with its decoding in the graph -> an ONNX
TIDL runs up to its heads + the caffe_ssd prototxt for the rest, proven on real photographs.

1. The input is made static (the graph's own shape, or --inputs), shapes inferred; heads found by structure
   (graphs.onnx_heads: works with node names equal to output names and reshape targets computed from Shape of the
   feature maps), names TIDL cannot take renamed.
2. The in-graph decoding is read from the graph (graphs.onnx_ssd_decode): priors from its constants, variances,
   box coding, score converter, NonMaxSuppression's thresholds and limits.
3. Per head a prior_box_param is fitted to those priors (tidl.meta_arch.prior_fit) and the deviation measured. Heads
   whose boxes are in another order than Caffe's get their channels permuted; sizes no prior_box_param reproduces
   to PRIOR_EXACT (MLPerf's clamped boxes, a non-integral max_size) are folded into the box conv
   (tidl.meta_arch.prior_fold) -- and the graph's own prior constants are rewritten to TIDL's priors in the new
   order, so the model's own outputs stay the original's while TIDL's priors equal what its heads were trained with.
   A head whose boxes have several scales (min sizes) is first split into one head per scale
   (tidl.meta_arch.head_split), each with its own prior_box_param.
4. Thresholds: confidence, NMS IoU and keep_top_k from the graph (else options; an option given wins), and
   nms_param.top_k = every prior: Caffe/TIDL cap candidates per class BEFORE NMS, ONNX NonMaxSuppression caps boxes
   AFTER it, so only "every prior" reproduces the original. TI's speed settings (top_k 200, confidence 0.3) stay
   options, and choosing one measures and says the parity it costs (tidl.meta_arch.verify.parity_loss).
5. Verified twice against the original: the prototxt's detections (reference executor on the heads) and the
   rewritten model.onnx's own outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.bundle.config import (META_ARCH_ONNX_SSD, PROTOTXT, detector_config, outputs_postprocess,
                                   ssd_runtime_options)
from edgezoo.bundle.provenance import is_standin
from edgezoo.core.errors import RecipeError
from edgezoo.datasets.images import verification_images
from edgezoo.detection.codings import CodeType
from edgezoo.graphs import onnx_model
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.graph import GRAPH, INPUTS, check_names
from edgezoo.recipes.params import MAX_DETECTION_SLOTS, SLOTS_WHY, ParamSpec, ParamType
from edgezoo.ssd.onnx_heads import find_heads, head_notes, sanitize_head_names
from edgezoo.ssd.onnx_ssd_decode import read_decode, replace_priors
from edgezoo.tidl.meta_arch import prior_fit
from edgezoo.tidl.meta_arch.head_split import scale_groups, split_heads
from edgezoo.tidl.meta_arch.prior_fold import fold_size_ratios, permute_anchors
from edgezoo.tidl.meta_arch.prototxt import CaffeSsd, DetectionOutputParam, MetaArch, NmsParam, save_meta_arch
from edgezoo.tidl.meta_arch.validate import check_meta_arch
from edgezoo.verify.detection import compare_detectors, detection_tolerances
from edgezoo.verify.detectors import load_detector
from edgezoo.verify.meta_arch import parity_loss, verify_with_prototxt
from edgezoo.zoo.schema import Preprocess, Target

PRIOR_EXACT = 1e-4  # normalised units: closer than this, TIDL's priors are the graph's
MAX_CLASSES = 100_000

PARAMS = (
    ParamSpec("confidence_threshold", ParamType.FLOAT, "TIDL confidence threshold (TI's speed setting: 0.3)",
              low=0.0, high=1.0, high_open=True, default_text="the graph's NonMaxSuppression score threshold"),
    ParamSpec("nms_threshold", ParamType.FLOAT, "NMS IoU threshold", low=0.0, high=1.0, low_open=True,
              default_text="the graph's NonMaxSuppression IoU threshold"),
    ParamSpec("top_k", ParamType.INT, "candidates per class before NMS (TI's speed setting: 200)", low=1,
              high=MAX_DETECTION_SLOTS, why_high=SLOTS_WHY, default_text="every prior (exact)"),
    ParamSpec("keep_top_k", ParamType.INT, "detections kept after NMS", low=1, high=MAX_DETECTION_SLOTS,
              why_high=SLOTS_WHY, default_text="the graph's overall limit"),
    ParamSpec("mean", ParamType.NUMBERS, "verification preprocessing: per-channel mean (RGB, 0-255 pixels)",
              default=(127.5, 127.5, 127.5)),
    ParamSpec("scale", ParamType.NUMBERS, "verification preprocessing: per-channel scale after the mean",
              low=0, low_open=True, default=(1 / 127.5, 1 / 127.5, 1 / 127.5)),
    ParamSpec("num_classes", ParamType.INT, "classes including background, when several head sets could match",
              low=2, high=MAX_CLASSES, why_high="no detection set has more classes", default_text="found"),
)


@dataclass
class Conversion:
    """What the route made and measured before verification (benchmarks read it too)."""

    model: Any  # the rewritten ModelProto
    meta: Any  # MetaArch
    exact_meta: Any  # the same with the exact defaults (differs from `meta` only when a speed setting was chosen)
    heads: Any  # HeadSet
    decode: Any  # GraphDecode
    fits: list[Any]  # HeadFit per head
    folded: Any  # FoldResult | None
    notes: list[str]


def _static_image(model: Any, where: str) -> tuple[int, int]:
    for inp in onnx_model.graph_inputs(model):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
        if len(dims) == 4:
            if any(d is None or d <= 0 for d in dims):
                raise RecipeError(f"{where}: input {inp.name!r} has no static shape ({dims})",
                                  hint=f"give it one: --inputs {inp.name}:1x3xHxW")
            return dims[2], dims[3]
    raise RecipeError(f"{where}: no 4-D image input", hint="an SSD takes an NCHW image")


def _thresholds(params: Mapping[str, Any], decode: Any, priors: int, where: str) -> dict[str, Any]:
    graph = {"confidence_threshold": decode.score_threshold, "nms_threshold": decode.iou_threshold,
             "keep_top_k": decode.total if decode.total is not None else decode.per_class, "top_k": priors}
    out = {}
    for name, value in graph.items():
        given = params.get(name)
        if given is None and value is None:
            raise RecipeError(f"{where}: the graph does not say its {name} (no constant at {decode.nms_node})",
                              hint=f"give --param {name}=VALUE")
        out[name] = given if given is not None else value
    return out


def convert(model: Any, params: Mapping[str, Any], where: str) -> Conversion:
    """Steps 1-4 of the module docstring on a model whose input is already static."""
    image = _static_image(model, where)
    model = onnx_model.infer_shapes(model)
    heads = find_heads(model, params.get("num_classes"), where=where)
    model, heads = sanitize_head_names(model, heads)
    decode = read_decode(model, heads, where)
    v = decode.variances  # (x, y, w, h)
    variances = (v[1], v[0], v[3], v[2]) if decode.code_type is CodeType.CENTER_SIZE_YXHW else v
    original_heads = heads
    per_head = prior_fit.split_per_head(decode.priors, [h.grid for h in heads.heads],
                                        [h.boxes_per_location for h in heads.heads], heads.layout)
    groups = [scale_groups(np.median(p[..., 2:].reshape(-1, p.shape[2], 2), axis=0) * np.array(image[::-1]))
              for p in per_head]
    notes = [f"decoding read from the graph: priors {', '.join(t.name for t in decode.prior_tensors)} "
             f"({len(decode.priors)}), {decode.code_type.name}, variances {list(variances)}, "
             f"{decode.score_converter.name} scores, NMS {decode.nms_node} (fit error {decode.fit_error:.2g})"]
    if any(len(g) > 1 for g in groups):
        model, heads = split_heads(model, heads, groups)
        notes.append("heads with boxes of several scales split into one head per scale (one prior_box_param "
                     "each): " + "; ".join(f"head {k}: boxes {g}" for k, g in enumerate(groups) if len(g) > 1))
    # the graph's priors per (split) head, in the head's box order
    graph_priors = [p[:, :, list(g), :] for p, head_groups in zip(per_head, groups) for g in head_groups]
    grids = [h.grid for h in heads.heads]
    fits = [prior_fit.fit_head(k, hwa, image, variances) for k, hwa in enumerate(graph_priors)]
    if any(f.permuted for f in fits):
        model = permute_anchors(model, heads, [f.order for f in fits])
        notes.append("head channels permuted to Caffe's prior order: " + "; ".join(
            f"head {f.head}: boxes {list(f.order)}" for f in fits if f.permuted))
    new_priors = [p[:, :, list(f.order), :] for p, f in zip(graph_priors, fits)]
    to_fold = [f for f in fits if f.deviation > PRIOR_EXACT]
    folded = None
    for f in to_fold:
        if not f.foldable or f.centre_deviation > PRIOR_EXACT:
            notes.append(f"head {f.head}: priors differ from TIDL's by {f.deviation:.3g} in a way that cannot be "
                         "folded into the head (centres, or sizes varying with the location)")
    foldable = [f for f in to_fold if f.foldable and f.centre_deviation <= PRIOR_EXACT]
    if foldable:
        ratios = [f.size_ratios if f in foldable else np.ones_like(f.size_ratios) for f in fits]
        model, folded = fold_size_ratios(model, heads, ratios, variances, decode.code_type)
        for f in foldable:
            new_priors[f.head] = prior_fit.tidl_priors(f.param, grids[f.head], image)
        notes.append(f"sizes no prior_box_param reproduces folded into the box heads ({len(folded.anchors)} boxes, "
                     f"{folded.priors} priors): TIDL decodes the graph's boxes exactly; the graph's prior "
                     "constants now hold TIDL's priors, so model.onnx's own outputs stay the original's")
    if foldable or any(f.permuted for f in fits):
        # back to the original heads' box order: the split heads' convs are concatenated back into the original's
        rejoined, k = [], 0
        for p, head_groups in zip(per_head, groups):
            whole = np.empty_like(p)
            for g in head_groups:
                whole[:, :, list(g), :] = new_priors[k]
                k += 1
            rejoined.append(whole)
        model = replace_priors(model, decode, prior_fit.join_heads(rejoined, original_heads.layout))
    notes.append("prior fit per head (deviation from the graph's priors before any rewrite): " + "; ".join(
        f"{f.head}: {f.deviation:.2g}" for f in fits))
    thresholds = _thresholds(params, decode, len(decode.priors), where)
    exact = _thresholds({}, decode, len(decode.priors), where)
    outputs = onnx_model.output_names(model)
    meta = _meta(heads, fits, image, outputs, decode, variances, thresholds)
    exact_meta = meta if thresholds == exact else _meta(heads, fits, image, outputs, decode, variances, exact)
    return Conversion(model, meta, exact_meta, heads, decode, fits, folded, notes)


def _meta(heads: Any, fits: list[Any], image: tuple[int, int], outputs: list[str], decode: Any,
          variances: tuple[float, ...], t: Mapping[str, Any]) -> Any:
    return MetaArch(name="ssd", caffe_ssd=(CaffeSsd(
        box_input=tuple(heads.box_inputs), class_input=tuple(heads.class_inputs), output=tuple(outputs),
        in_width=image[1], in_height=image[0], score_converter=decode.score_converter,
        prior_box_param=tuple(f.param for f in fits),
        detection_output_param=DetectionOutputParam(
            num_classes=heads.num_classes, share_location=True, background_label_id=decode.background_label_id,
            nms_param=NmsParam(nms_threshold=t["nms_threshold"], top_k=t["top_k"]), code_type=decode.code_type,
            keep_top_k=t["keep_top_k"], confidence_threshold=t["confidence_threshold"]),
        data_layout=heads.layout),))


def runtime_options(meta: Any) -> dict[str, Any]:
    dop = meta.single_ssd().detection_output_param
    return ssd_runtime_options(META_ARCH_ONNX_SSD, confidence=dop.confidence_threshold,
                               nms=dop.nms_param.nms_threshold, top_k=dop.nms_param.top_k, keep_top_k=dop.keep_top_k,
                               prototxt=PROTOTXT)


def speed_loss_note(loss: Mapping[str, Mapping[str, float]]) -> str:
    """One line: the parity a non-exact setting costs, measured."""
    exact, chosen = loss["exact"], loss["chosen"]
    return (f"parity loss of the chosen thresholds: they reproduce {chosen['matched_fraction']:.1%} of the "
            f"original's {chosen['original']} detections on the verification images, the exact defaults "
            f"{exact['matched_fraction']:.1%}")


def _rgb(params: Mapping[str, Any], name: str) -> tuple[float, ...]:
    v = tuple(params[name])
    v = v * 3 if len(v) == 1 else v
    if len(v) != 3:
        raise RecipeError(f"--param {name}: expected 1 or 3 values (RGB), got {len(v)}")
    return v


def check_params(params: Mapping[str, Any]) -> None:
    """What the ParamSpecs cannot say: mean and scale have 1 or 3 values."""
    _rgb(params, "mean")
    _rgb(params, "scale")


def verification_preprocess(ssd: Any, params: Mapping[str, Any]) -> Any:
    """Direct resize to the prototxt's input size, RGB, (x - mean) * scale, NCHW: the user's normalisation."""
    return Preprocess(resize=(ssd.in_height, ssd.in_width), resize_mode="direct", interpolation="linear", crop=None,
                      color="RGB", mean=_rgb(params, "mean"), scale=_rgb(params, "scale"), layout="NCHW")


def export_ssd(source: Path, model: Any, workdir: Path, params: Mapping[str, Any],
               tolerances: Mapping[str, float]) -> Any:
    """Convert + verify: a RecipeOutput. `model` is the source with a static input."""
    conv = convert(model, params, source.name)
    model_path = onnx_model.save(conv.model, Path(workdir) / "model.onnx")
    warnings = check_meta_arch(conv.meta, conv.model, where=PROTOTXT)
    prototxt = save_meta_arch(conv.meta, Path(workdir) / PROTOTXT)
    standin = is_standin(source)
    spec = verification_preprocess(conv.meta.single_ssd(), params)
    report = verify_with_prototxt(model_path, prototxt, original=source, tolerances=tolerances, standin=standin,
                                  meta=conv.meta, preprocess=spec)
    # The rewritten graph's own outputs (permuted heads, folded sizes, rewritten prior constants) must still be the
    # original's: they are what ONNX Runtime users of model.onnx get.
    tol = detection_tolerances(None, tolerances)
    own = compare_detectors(load_detector(source, spec), load_detector(model_path, spec), verification_images(),
                            tol, standin=standin)
    for check in own.checks:
        report.add(f"model_onnx_{check.name}", check.value, check.limit, check.kind)
    notes = list(conv.notes)
    heads = conv.heads
    notes += head_notes(heads)
    notes += [f"prototxt warning: {w}" for w in warnings]
    dop = conv.meta.single_ssd().detection_output_param
    notes.append(f"nms_param.top_k = {dop.nms_param.top_k}" + (" (every prior): Caffe's top_k caps candidates "
                 "BEFORE NMS, the original caps AFTER it" if dop.nms_param.top_k == len(conv.decode.priors) else ""))
    loss = None
    if conv.meta is not conv.exact_meta:
        loss = parity_loss(model_path, source, {"exact": conv.exact_meta, "chosen": conv.meta}, preprocess=spec)
        notes.append(speed_loss_note(loss))
    report.notes += [n for n in notes if n not in report.notes]

    outputs = onnx_model.output_names(conv.model)
    # TIDL's labels are Caffe's class index; label_offset_pred turns them into the graph's own labels (read from
    # the graph: e.g. -1 when it numbers the foreground classes from 0). The recipes add the rest.
    # TI's detection_threshold: the graph's own score threshold, so TI's pipeline keeps what the model keeps.
    config = {"postprocess": outputs_postprocess(outputs, yxyx=conv.decode.box_order == "yxyx",
                                                 threshold=conv.decode.score_threshold or 0.0),
              "metric": {"label_offset_pred": conv.decode.label_offset}}
    recorded = {"thresholds": {"confidence_threshold": dop.confidence_threshold,
                               "nms_threshold": dop.nms_param.nms_threshold, "top_k": dop.nms_param.top_k,
                               "keep_top_k": dop.keep_top_k},
                "heads": {"box_input": heads.box_inputs, "class_input": heads.class_inputs,
                          "layout": heads.layout.name, "renamed": dict(heads.renamed)},
                "priors": {"tensors": [t.name for t in conv.decode.prior_tensors],
                           "deviation_per_head": [f.deviation for f in conv.fits],
                           "permuted_heads": [f.head for f in conv.fits if f.permuted],
                           "folded_boxes": [] if conv.folded is None else conv.folded.anchors},
                "speed_setting_parity": loss}
    return RecipeOutput(model=model_path, verify=report, cut=outputs,
                        cut_reason="original outputs kept; TIDL replaces the part after the heads",
                        extra_files={PROTOTXT: prototxt}, runtime_options=runtime_options(conv.meta),
                        config=config, params=recorded, original=source, notes=notes)


@register("generic-onnx-ssd-meta-arch", params=(INPUTS, *PARAMS), precheck=check_params,
          summary="export --graph FILE.onnx --to onnx --meta-arch ssd: any ONNX SSD -> heads + meta_arch.prototxt")
def generic_onnx_ssd(rin: RecipeInput) -> RecipeOutput:
    """`export --graph model.onnx --to onnx --meta-arch ssd`: the user's ONNX SSD (input fixed by `inputs` when given)
    -> model.onnx + meta_arch.prototxt, with config.yaml in TI's schema from the stated normalisation."""
    source = rin.source(GRAPH)
    fixed = rin.params.get("inputs") or {}
    model = onnx_model.load(source)
    if fixed:
        check_names(source, fixed, [])
        model = onnx_model.fix_input_shapes(model, fixed)
    output = export_ssd(source, model, rin.workdir, rin.params, rin.tolerances)
    image = onnx_model.graph_inputs(model)[0]  # static by now (checked or fixed by `inputs`)
    size = [d.dim_value for d in image.type.tensor_type.shape.dim][2:]
    output.config = detector_config(Target.ONNX, source.stem, "NCHW", size, rin.params["mean"], rin.params["scale"],
                                    output.config)
    output.params = {"inputs": dict(fixed), **output.params}
    return output
