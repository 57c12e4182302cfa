"""`export --graph model.onnx --to onnx --meta-arch ssd`: any ONNX SSD with its decoding in the graph -> an ONNX
TIDL runs up to its heads + the caffe_ssd prototxt for the rest, proven on real photographs.

1. The input is made static (the graph's own shape, or --inputs), shapes inferred; heads found by structure
   (ssd.onnx_heads: works with node names equal to output names and reshape targets computed from Shape of the
   feature maps), names TIDL cannot take renamed.
2. The in-graph decoding is read from the graph (ssd.onnx_ssd_decode): priors from its constants, variances,
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
   options, and choosing one measures and says the parity it costs (verify.meta_arch.parity_loss).
5. Verified twice against the original: the prototxt's detections (reference executor on the heads) and the
   rewritten model.onnx's own outputs.
"""

from __future__ import annotations

import math

from collections.abc import Collection, Mapping
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
from edgezoo.preprocessing.card import preprocess
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.graph import GRAPH, INPUTS, check_names
from edgezoo.recipes.params import MAX_DETECTION_SLOTS, SLOTS_WHY, ParamSpec, ParamType, chosen_limits
from edgezoo.ssd.onnx_heads import find_heads, head_notes, sanitize_head_names
from edgezoo.ssd.onnx_ssd_decode import read_decode
from edgezoo.ssd.onnx_ssd_rewrite import replace_priors, without_clipping
from edgezoo.ssd.onnx_ssd_input import prepare_input
from edgezoo.tidl.meta_arch import prior_fit
from edgezoo.tidl.meta_arch.head_split import scale_groups, split_heads
from edgezoo.tidl.meta_arch.prior_fold import fold_centre_offsets, fold_size_ratios, permute_anchors
from edgezoo.tidl.meta_arch.prototxt import CaffeSsd, DetectionOutputParam, MetaArch, NmsParam, save_meta_arch
from edgezoo.tidl.meta_arch.validate import check_meta_arch
from edgezoo.verify.detection import compare_detectors, detection_tolerances
from edgezoo.verify.detectors import OutputNames, meta_arch_detector, od_api_detector
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
    input_cut: Any = None  # ssd.onnx_ssd_input.InputCut: the converted model's input, preprocessing cut off


def graph_limits(decode: Any, priors: int, classes: int) -> dict[str, Any]:
    """The prototxt's thresholds and limits that reproduce the graph: top_k = the candidates it keeps per class
    before NMS (every prior unless it has a TopK there), keep_top_k = its overall cap, else what its per-class
    limit allows over all foreground classes (capped at the slot budget)."""
    foreground = classes - (1 if decode.background_label_id >= 0 else 0)
    keep = decode.total
    if keep is None:
        keep = min(MAX_DETECTION_SLOTS, (decode.per_class or priors) * foreground)
    return {"confidence_threshold": decode.score_threshold, "nms_threshold": decode.iou_threshold,
            "keep_top_k": keep, "top_k": decode.candidates if decode.candidates is not None else priors}


def _thresholds(params: Mapping[str, Any], decode: Any, priors: int, where: str, classes: int = 0
                ) -> dict[str, Any]:
    graph = graph_limits(decode, priors, classes)
    out = {}
    for name, value in graph.items():
        given = params.get(name)
        if given is None and value is None:
            raise RecipeError(f"{where}: the graph does not say its {name} (no constant at {decode.nms_node})",
                              hint=f"give --param {name}=VALUE")
        out[name] = given if given is not None else value
    return out


OD_API_NAMES = ("Postprocessor/", "BoxPredictor")  # node names tf2onnx keeps from a TF OD API frozen graph


def convert(model: Any, params: Mapping[str, Any], where: str) -> Conversion:
    """Steps 1-4 of the module docstring on a model whose input is already static. An ONNX converted from a TF
    Object Detection API graph that this route cannot take is sent to the frozen graph's own route."""
    try:
        return _convert(model, params, where)
    except RecipeError as exc:
        if not any(any(mark in n.name for mark in OD_API_NAMES) for n in model.graph.node):
            raise
        raise RecipeError(f"{exc.message} (an ONNX converted from a TF Object Detection API graph)",
                          hint="export its frozen graph instead: edgezoo export --graph frozen_inference_graph.pb "
                               "--pipeline-config pipeline.config --to onnx (that route rewrites the OD API's "
                               "anchors and heads for TIDL exactly)") from None


def _convert(model: Any, params: Mapping[str, Any], where: str) -> Conversion:
    cut = prepare_input(onnx_model.infer_shapes(model), where)
    image = cut.size
    model = cut.model
    heads = find_heads(model, params.get("num_classes"), where=where)
    model, heads = sanitize_head_names(model, heads)
    decode = read_decode(model, heads, where, image=image,
                         given=[n for n in ("confidence_threshold", "nms_threshold", "top_k", "keep_top_k")
                                if params.get(n) is not None])
    v = decode.variances  # (x, y, w, h)
    variances = (v[1], v[0], v[3], v[2]) if decode.code_type is CodeType.CENTER_SIZE_YXHW else v
    original_heads = heads
    per_head = prior_fit.split_per_head(decode.priors, [h.grid for h in heads.heads],
                                        [h.boxes_per_location for h in heads.heads], heads.layout)
    groups = [scale_groups(np.median(p[..., 2:].reshape(-1, p.shape[2], 2), axis=0) * np.array(image[::-1]))
              for p in per_head]
    notes = [f"decoding measured on the graph's own tail ({decode.decoded}): {len(decode.priors)} priors held in "
             f"{', '.join(t.name for t in decode.prior_tensors) or 'computed tensors'}, {decode.code_type.name}, "
             f"variances {list(variances)}, {decode.score_converter.name} scores, NMS {decode.nms_node} (measured "
             f"model exact to {decode.fit_error:.2g})", *decode.notes, *cut.notes]
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
        if not f.foldable:
            notes.append(f"head {f.head}: priors differ from TIDL's by {f.deviation:.3g} in a way that cannot be "
                         "folded into the head (sizes varying with the location)")
    foldable = [f for f in to_fold if f.foldable]
    if foldable:
        ratios = [f.size_ratios if f in foldable else np.ones_like(f.size_ratios) for f in fits]
        model, folded = fold_size_ratios(model, heads, ratios, variances, decode.code_type)
        shifted = {}
        for f in foldable:
            tidl = prior_fit.tidl_priors(f.param, grids[f.head], image)
            if f.centre_deviation > PRIOR_EXACT:  # e.g. centres clamped to the image at the border
                g = new_priors[f.head]
                shifted[f.head] = np.stack([(g[..., 0] - tidl[..., 0]) / (decode.variances[0] * tidl[..., 2]),
                                            (g[..., 1] - tidl[..., 1]) / (decode.variances[1] * tidl[..., 3])],
                                           axis=-1)
            new_priors[f.head] = tidl
        if shifted:
            model = fold_centre_offsets(model, heads, shifted, decode.code_type)
            notes.append("centres no prior_box_param reproduces (heads " + ", ".join(map(str, sorted(shifted))) +
                         ") added to the box heads' centre regressions as a constant per location (an Add after "
                         "the conv): TIDL decodes the graph's boxes exactly")
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
        model = replace_priors(model, decode, prior_fit.join_heads(rejoined, original_heads.layout),
                               heads=original_heads)
    notes.append("prior fit per head (deviation from the graph's priors before any rewrite): " + "; ".join(
        f"{f.head}: {f.deviation:.2g}" for f in fits))
    thresholds = _thresholds(params, decode, len(decode.priors), where, heads.num_classes)
    # the exact defaults are the graph's own values (where the graph does not say one, the value given stands in)
    exact = _thresholds({k: v for k, v in thresholds.items() if graph_limits(decode, len(decode.priors),
                                                                             heads.num_classes)[k] is None},
                        decode, len(decode.priors), where, heads.num_classes)
    outputs = onnx_model.output_names(model)
    meta = _meta(heads, fits, image, outputs, decode, variances, thresholds)
    exact_meta = meta if thresholds == exact else _meta(heads, fits, image, outputs, decode, variances, exact)
    return Conversion(model, meta, exact_meta, heads, decode, fits, folded, notes, cut)


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


def verification_preprocess(conv: Conversion, params: Mapping[str, Any], explicit: Collection[str] = ()
                            ) -> tuple[Any, Any]:
    """(original's, converted model's) preprocessing: direct resize to the input size, RGB, (x - mean) * scale.
    The original takes the user's normalisation (--param mean/scale); without it, a graph that normalises its input
    itself says what it takes ([0, 1] for torchvision's). The converted model takes that composed with the
    preprocessing cut off."""

    cut = conv.input_cut
    mean, scale = _rgb(params, "mean"), _rgb(params, "scale")
    implied = cut.original_default()
    if implied is not None and not {"mean", "scale"} & set(explicit):
        mean, scale = implied
    c_mean, c_scale = cut.pixels(mean, scale)

    def spec(m: tuple[float, ...], s: tuple[float, ...], layout: str) -> Any:
        return Preprocess(resize=cut.size, resize_mode="direct", interpolation="linear", crop=None, color="RGB",
                          mean=m, scale=s, layout=layout)

    return spec(mean, scale, cut.original_layout), spec(c_mean, c_scale, cut.layout)


def original_detector(path: Path, conv: Conversion, spec: Any, transform: Any = None) -> Any:
    """The original (or the rewritten model.onnx, which keeps its outputs) as a detector: its outputs and limits as
    probing its post-processing found them, so it is compared at its own threshold and overall cap."""

    d = conv.decode
    r = d.outputs  # the roles probing the post-processing found
    outputs = OutputNames(r.boxes, r.labels, r.scores, r.count, r.order, r.scale)
    detector = od_api_detector(Path(path), spec, threshold=d.score_threshold, outputs=outputs,
                               threshold_source="the graph's own score threshold", transform=transform)
    detector.domain.slots = d.total
    return detector


def converted_feed(source: Path, conv: Conversion, original_spec: Any) -> Any:
    """image -> the converted model's input as the ORIGINAL's own preprocessing computes it (None when nothing was
    cut off): both models then see bit-identical tensors, so parity measures the conversion alone -- config.yaml's
    mean/scale give the same values to float rounding, which an untrained network can amplify."""
    cut = conv.input_cut
    if cut.cut is None:
        return None
    import onnxruntime as ort


    prefix = onnx_model.cut(onnx_model.load(source), [cut.cut])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(prefix.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    dtype = "uint8" if session.get_inputs()[0].type == "tensor(uint8)" else "float32"

    def transform(image: np.ndarray) -> np.ndarray:
        x = preprocess(image, original_spec, dtype=dtype, layout=cut.original_layout)
        return session.run([cut.cut], {name: x})[0]

    return transform


def export_ssd(source: Path, model: Any, workdir: Path, params: Mapping[str, Any],
               tolerances: Mapping[str, float], explicit: Collection[str] = ()) -> Any:
    """Convert + verify: a RecipeOutput. `model` is the source with a static input;
    `explicit`: the parameter names the user gave."""

    conv = convert(model, params, source.name)
    model_path = onnx_model.save(conv.model, Path(workdir) / "model.onnx")
    warnings = check_meta_arch(conv.meta, conv.model, where=PROTOTXT)
    prototxt = save_meta_arch(conv.meta, Path(workdir) / PROTOTXT)
    standin = is_standin(source)
    original_spec, spec = verification_preprocess(conv, params, explicit)
    reference = original_detector(source, conv, original_spec)
    feed = converted_feed(source, conv, original_spec)
    report = verify_with_prototxt(model_path, prototxt, original=source, tolerances=tolerances, standin=standin,
                                  meta=conv.meta, preprocess=spec, chosen=chosen_limits(params, PARAMS),
                                  reference=reference, transform=feed)
    # The rewritten graph's own outputs (permuted heads, folded sizes, rewritten prior constants) must still be the
    # original's: they are what ONNX Runtime users of model.onnx get.
    tol = detection_tolerances(None, tolerances)
    own = compare_detectors(reference, original_detector(model_path, conv, spec, feed), verification_images(),
                            tol, standin=standin)
    for check in own.checks:
        report.add(f"model_onnx_{check.name}", check.value, check.limit, check.kind)
    notes = list(conv.notes)
    unclipped = without_clipping(onnx_model.load(source), conv.decode)
    if unclipped is not None:
        # The original clips its boxes to the image before NMS (torchvision, the OD API); TIDL cannot. Against the
        # original with that clip removed, the prototxt's parity is the conversion's alone: both figures are said.
        path = onnx_model.save(unclipped, Path(workdir) / "original_unclipped.onnx")
        alone = compare_detectors(original_detector(path, conv, original_spec), meta_arch_detector(
            model_path, conv.meta, spec, transform=feed), verification_images(), tol, standin=standin)
        figures = {c.name: c.value for c in alone.checks}
        report.metrics["without_the_originals_clipping"] = figures
        note = (f"the original clips its boxes to the image before NMS, TIDL's detection layer does not: "
                f"against the original without that clip the prototxt matches "
                f"{figures['matched_fraction_of_original']:.2%} of its detections (box error "
                f"{figures['max_box_error']:.2g}); the difference from the original's own figure is the clip")
        own_figure = min(float(c.value) for c in report.checks if c.name.startswith("matched_fraction_of_"))
        if alone.passed and not report.passed:
            # The conversion is exact; what fails is a semantic TIDL lacks. Say how to accept that cost knowingly.
            floor = math.floor(own_figure * 100) / 100
            note += (f"; to accept what the clip costs on this model, export again with --tolerance "
                     f"min_matched_fraction={floor:.2f}")
        notes.append(note)
    heads = conv.heads
    notes += head_notes(heads)
    notes += [f"prototxt warning: {w}" for w in warnings]
    dop = conv.meta.single_ssd().detection_output_param
    notes.append(f"nms_param.top_k = {dop.nms_param.top_k}" + (" (every prior): Caffe's top_k caps candidates "
                 "BEFORE NMS, the original caps AFTER it" if dop.nms_param.top_k == len(conv.decode.priors) else ""))
    loss = None
    if conv.meta is not conv.exact_meta:
        loss = parity_loss(model_path, source, {"exact": conv.exact_meta, "chosen": conv.meta}, preprocess=spec,
                           reference=reference, transform=feed)
        notes.append(speed_loss_note(loss))
    report.notes += [n for n in notes if n not in report.notes]

    outputs = onnx_model.output_names(conv.model)
    # TIDL's labels are Caffe's class index; label_offset_pred turns them into the graph's own labels (read from
    # the graph: e.g. -1 when it numbers the foreground classes from 0). The recipe adds the rest.
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
                "speed_setting_parity": loss,
                "preprocess": {"layout": conv.input_cut.layout, "size": list(conv.input_cut.size),
                               "mean": list(spec.mean), "scale": list(spec.scale),
                               "input": conv.input_cut.input, "cut_at": conv.input_cut.cut}}
    return RecipeOutput(model=model_path, verify=report, cut=outputs,
                        cut_reason="original outputs kept; TIDL replaces the part after the heads",
                        extra_files={PROTOTXT: prototxt}, runtime_options=runtime_options(conv.meta),
                        config=config, params=recorded, original=source, notes=notes)


def _explicit(params: Mapping[str, Any]) -> set[str]:
    """The normalisation parameters the user set (a value other than the default)."""
    defaults = {s.name: s.default for s in PARAMS}
    return {n for n in ("mean", "scale") if tuple(params.get(n) or ()) != tuple(defaults[n])}


@register("generic-onnx-ssd-meta-arch", params=(INPUTS, *PARAMS), precheck=check_params,
          summary="export --graph FILE.onnx --to onnx --meta-arch ssd: any ONNX SSD -> heads + meta_arch.prototxt")
def generic_onnx_ssd(rin: RecipeInput) -> RecipeOutput:
    """`export --graph model.onnx --to onnx --meta-arch ssd`: the user's ONNX SSD (input fixed by `inputs` when given)
    -> model.onnx + meta_arch.prototxt, with config.yaml in TI's schema: the converted model's input (the in-graph
    preprocessing cut off) and the pixel normalisation that makes it."""
    source = rin.source(GRAPH)
    fixed = rin.params.get("inputs") or {}
    model = onnx_model.load(source)
    if fixed:
        check_names(source, fixed, [])
        model = onnx_model.fix_input_shapes(model, fixed)
    output = export_ssd(source, model, rin.workdir, rin.params, rin.tolerances, explicit=_explicit(rin.params))
    pre = output.params["preprocess"]
    output.config = detector_config(Target.ONNX, source.stem, pre["layout"], pre["size"], pre["mean"], pre["scale"],
                                    output.config)
    output.params = {"inputs": dict(fixed), **output.params}
    return output
