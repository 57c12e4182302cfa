"""Recipes for a user's own TF Object Detection API SSD (frozen_inference_graph.pb + pipeline.config, no card).

What the zoo's SSD-MobileNet recipes do, for any OD API SSD: the graph's parts are found by structure
(ssd/od_api_graph.py), the anchors generated from the pipeline.config (ssd_anchor_generator or
multiscale_anchor_generator) and checked against the graph's own anchor tensor, the class heads checked against
num_classes, and the preprocessing read off the graph itself (the affine map from pixels to what the first
convolution reads), so verification feeds both models the same pixels. A pipeline.config that does not belong to the
graph is an exit-2 error that says what differs.

- `od-api-ssd-tflite`: TFLite ending in TFLite_Detection_PostProcess (ssd/ssd_surgery.py), parity against the
  frozen graph on photographs.
- `od-api-ssd-onnx`: heads converted to ONNX (tf2onnx), rewritten so TIDL's Caffe priors equal the TF anchors,
  caffe_ssd prototxt (recipes/ssd_mobilenet_onnx.py); parity of the prototxt's semantics and of ONNX Runtime.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.bundle.config import (META_ARCH_ONNX_SSD, MODEL_SHORTLIST, PROTOTXT, detector_config,
                                   ssd_runtime_options)
from edgezoo.core.errors import EdgezooError, RecipeError
from edgezoo.datasets.images import verification_images
from edgezoo.detection.anchors import Anchors, check_against_graph, generate_anchors
from edgezoo.detection.pipeline_config import SsdPipelineConfig, load_pipeline_config
from edgezoo.graphs import onnx_model, tf_graph
from edgezoo.graphs.convert import frozen_graph_to_onnx
from edgezoo.graphs.runners import load_runner
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.params import MAX_DETECTION_SLOTS, SLOTS_WHY, ParamSpec, ParamType, chosen_limits
from edgezoo.recipes.ssd_mobilenet import (ONNX_PARAMS, TFLITE_PARAMS, _check_output_slots, _config, check_converted_op,
                                           graph_anchor_tensor, resolve_options, tidl_runtime_options)
from edgezoo.recipes.ssd_mobilenet_onnx import INPUT_NAME, rewrite, tail_ti_config
from edgezoo.ssd import od_api_graph, ssd_surgery
from edgezoo.ssd.ssd_surgery import SsdHeads
from edgezoo.tidl.meta_arch.prototxt import save_meta_arch
from edgezoo.verify.detection import compare_detectors, detection_tolerances
from edgezoo.verify.detectors import meta_arch_detector, od_api_detector, tflite_postprocess_detector
from edgezoo.zoo.schema import Preprocess, Target

GRAPH = "frozen_inference_graph.pb"
CONFIG = "pipeline.config"
# Pixel values at which the preprocessing is probed: two define the affine map, the third checks it is affine.
_PROBES = (0, 255, 128)


@dataclass(frozen=True)
class OdApiSsdGraph:
    """A frozen OD API SSD, analysed against its pipeline.config."""

    pb: Path
    cfg: SsdPipelineConfig
    graph_def: Any
    heads: SsdHeads
    image_input: str
    normalized: str  # the tensor the converted model takes as input
    anchors: Anchors
    preprocess: Preprocess  # pixels -> normalized, as the graph computes it
    figures: dict[str, Any]

    @property
    def size(self) -> tuple[int, int]:
        return self.cfg.image_height, self.cfg.image_width


def _preprocess(pb: Path, image_input: str, normalized: str, size: tuple[int, int], where: str) -> Preprocess:
    """The graph's own normalisation, per channel: normalized = (pixel - mean) * scale (RecipeError if not affine)."""
    runner = load_runner(pb, outputs=[normalized])
    values = []
    for v in _PROBES:
        out = runner.run({image_input: np.full((1, *size, 3), v, np.uint8)}, [normalized])[normalized]
        values.append(np.asarray(out, np.float64).reshape(-1, 3).mean(axis=0))
    zero, full, mid = values
    scale = (full - zero) / 255.0
    if np.any(np.abs(scale) < 1e-12) or not np.allclose(zero + 128 * scale, mid, rtol=1e-4, atol=1e-4):
        raise RecipeError(f"{where}: the preprocessing ({image_input} -> {normalized}) is not a per-channel affine "
                          "map of the pixels", hint="the converted model's input must be a normalised image")
    mean = -zero / scale
    return Preprocess(resize=size, resize_mode="direct", interpolation="linear", crop=None, color="RGB",
                      mean=tuple(float(m) for m in mean), scale=tuple(float(s) for s in scale), layout="NHWC",
                      dtype="uint8")


def analyse(pb: Path, cfg: SsdPipelineConfig, notes: list[str]) -> OdApiSsdGraph:
    """Find the graph's parts and check the pipeline.config against them (RecipeError/ConfigError: exit 2)."""
    where = pb.name
    graph_def = tf_graph.load_graph_def(pb)
    heads = od_api_graph.find_heads(graph_def, where)
    image = od_api_graph.image_input(graph_def, where)
    normalized = od_api_graph.normalized_input(graph_def, where)
    size = (cfg.image_height, cfg.image_width)
    probe = ssd_surgery.replace_input(graph_def, normalized, [1, *size, 3], where)
    maps, per_loc, n, columns = ssd_surgery.head_shapes(probe, heads, [1, *size, 3], where)
    if columns != cfg.num_classes + 1:
        raise RecipeError(f"{where}: the class heads give {columns} scores per box (num_classes {columns - 1} + "
                          f"background); {cfg.source} says num_classes {cfg.num_classes}",
                          hint="the pipeline.config does not belong to this graph")
    anchors = generate_anchors(cfg.anchors, maps, size)
    if tuple(s.count for s in anchors.layers) != per_loc:
        raise RecipeError(f"{where}: the heads predict {list(per_loc)} boxes per location, {cfg.source}'s anchor "
                          f"generator gives {[s.count for s in anchors.layers]}",
                          hint="the pipeline.config does not belong to this graph")
    figures: dict[str, Any] = {"anchors": n, "feature_maps": [list(m) for m in maps],
                               "boxes_per_location": list(per_loc), "box_concat": heads.box_concat,
                               "class_concat": heads.class_concat, "normalized_input": normalized}
    anchor_name = od_api_graph.anchor_tensor(graph_def, n, where)
    if anchor_name is None:
        notes.append("the graph has no anchor tensor: anchors come from pipeline.config alone (not cross-checked)")
    else:
        graph_anchors = graph_anchor_tensor(pb, anchor_name, image, size)
        figures["anchor_tensor"] = anchor_name
        figures["anchors_max_abs_diff_vs_graph"] = check_against_graph(anchors, graph_anchors,
                                                                       f"{where}: {anchor_name}")
    spec = _preprocess(pb, image, normalized, size, where)
    figures["preprocess"] = {"mean": list(spec.mean), "scale": list(spec.scale)}
    return OdApiSsdGraph(pb, cfg, graph_def, heads, image, normalized, anchors, spec, figures)


def _sources(rin: RecipeInput) -> tuple[Path, SsdPipelineConfig]:
    return rin.source(GRAPH), load_pipeline_config(rin.source(CONFIG))


def original_detector(ssd: OdApiSsdGraph) -> Any:
    detector = od_api_detector(ssd.pb, ssd.preprocess, None, ssd.cfg.nms.score_threshold, "pipeline.config")
    detector.domain.slots = ssd.cfg.nms.max_total_detections
    return detector


def bundle_config(ssd: OdApiSsdGraph, target: Target, layout: str, detector: dict[str, Any]) -> dict[str, Any]:
    """config.yaml in TI's schema: the graph's measured preprocessing, the route's post-processing (`detector`: the
    zoo SSD route's postprocess for the same output convention, and the label offset)."""
    spec = ssd.preprocess
    return {**detector_config(target, ssd.pb.stem, layout, ssd.size, spec.mean, spec.scale, detector),
            "model_info": {"num_classes": ssd.cfg.num_classes, "feature_extractor": ssd.cfg.feature_extractor,
                           "model_shortlist": MODEL_SHORTLIST}}


@register("od-api-ssd-tflite", params=TFLITE_PARAMS, precheck=_check_output_slots,
          summary="export --graph (a TF OD API SSD) --to tflite: heads by structure, TFLite_Detection_PostProcess")
def od_api_ssd_tflite(rin: RecipeInput) -> RecipeOutput:
    pb, cfg = _sources(rin)
    notes: list[str] = []
    opts = resolve_options(rin.params, cfg, notes)
    t0 = time.monotonic()
    ssd = analyse(pb, cfg, notes)
    params = opts.postprocess_params(cfg)
    result = ssd_surgery.build_tflite_graph(
        ssd.graph_def, normalized_input=ssd.normalized, input_size=ssd.size, anchors_center=ssd.anchors.center,
        params=params, score_converter=cfg.score_converter, logit_scale=cfg.logit_scale, where=pb.name, notes=notes,
        heads=ssd.heads)
    model = ssd_surgery.convert_to_tflite(result.graph_def, rin.workdir / "model.tflite", ssd.size, rin.workdir)
    check_converted_op(model, params)
    seconds = time.monotonic() - t0
    report = compare_detectors(original_detector(ssd), tflite_postprocess_detector(model, ssd.preprocess),
                               verification_images(), detection_tolerances(None, rin.tolerances), standin=rin.standin,
                               chosen=chosen_limits(rin.params, TFLITE_PARAMS))
    report.metrics["surgery"] = {**ssd.figures, "convert_seconds": round(seconds, 3)}
    notes.append(f"{cfg.score_converter} scores{f' (logit_scale {cfg.logit_scale:g})' if cfg.logit_scale != 1 else ''}"
                 f", {ssd.figures['anchors']} anchors from pipeline.config; input {ssd_surgery.INPUT_NAME} "
                 f"[1,{ssd.size[0]},{ssd.size[1]},3] replaces {ssd.normalized}; TFLite_Detection_PostProcess with "
                 f"{opts.nms} NMS, max_detections {opts.max_detections}")
    # TFLite_Detection_PostProcess: 0-based classes without background -> the model's 1-based labels.
    config = bundle_config(ssd, Target.TFLITE, "NHWC", {"postprocess": _config(opts)["postprocess"],
                                                         "metric": {"label_offset_pred": 1}})
    return RecipeOutput(model=model, verify=report, cut=list(ssd_surgery.POSTPROCESS_OUTPUTS),
                        cut_reason="TFLite SSD ends in TFLite_Detection_PostProcess (TIDL meta_arch_type 1)",
                        runtime_options=tidl_runtime_options(opts), config=config, params=asdict(opts), original=pb,
                        notes=notes)


# tf2onnx opsets tried for the heads, lowest first: the tail is opset 10, as TIDL-era runtimes want it.
HEAD_OPSETS = (10, 11, 12)


def heads_to_onnx(ssd: OdApiSsdGraph, workdir: Path) -> Any:
    """Backbone + heads as ONNX: the graph from the normalised input (a new NCHW float input) to the head convs."""
    probe = ssd_surgery.replace_input(ssd.graph_def, ssd.normalized, [1, *ssd.size, 3], ssd.pb.name, INPUT_NAME)
    heads = [*ssd.heads.box_heads, *ssd.heads.class_heads]
    pb = tf_graph.write_graph_def(tf_graph.cut(probe, heads, ssd.pb.name), workdir / "heads.pb")
    dest = workdir / "heads.onnx"
    last: EdgezooError | None = None
    for opset in HEAD_OPSETS:
        try:
            frozen_graph_to_onnx(pb, [INPUT_NAME], heads, dest, opset=opset, inputs_as_nchw=[INPUT_NAME],
                                 input_shapes={INPUT_NAME: [1, *ssd.size, 3]})
            model = onnx_model.load(dest)
            break
        except EdgezooError as exc:
            last = exc
    else:
        assert last is not None
        raise last
    for value in model.graph.input:  # tf2onnx keeps the TF spelling 'name:0'; the prototxt's users see INPUT_NAME
        if value.name == f"{INPUT_NAME}:0":
            value.name = INPUT_NAME
    for node in model.graph.node:
        node.input[:] = [INPUT_NAME if i == f"{INPUT_NAME}:0" else i for i in node.input]
    return model


OWN_ONNX_PARAMS = (*ONNX_PARAMS, ParamSpec(
    "top_k", ParamType.INT, "TIDL nms_param.top_k: candidates per class kept BEFORE NMS (TI's speed setting: 200; "
    "the measured parity loss is reported)", low=1, high=MAX_DETECTION_SLOTS, why_high=SLOTS_WHY,
    default_text="every prior (the original's semantics)"))


def _speed_setting_loss(ssd: OdApiSsdGraph, dest: Path, meta: Any, report: Any, tol: dict[str, float]) -> str:
    """The parity the exact defaults (top_k every prior, the config's threshold) reach, next to the chosen ones."""
    from dataclasses import replace

    ssd_meta = meta.single_ssd()
    dop = ssd_meta.detection_output_param
    priors = int(report.metrics["route"]["priors"])
    exact = meta.with_ssd(replace(ssd_meta, detection_output_param=replace(
        dop, nms_param=replace(dop.nms_param, top_k=priors), confidence_threshold=ssd.cfg.nms.score_threshold)))
    exact_report = compare_detectors(original_detector(ssd), meta_arch_detector(dest, exact, ssd.preprocess),
                                     verification_images(), tol)
    key = "matched_fraction_of_original"
    chosen = next(c.value for c in report.checks if c.name == key)
    best = next(c.value for c in exact_report.checks if c.name == key)
    report.metrics["exact_defaults_matched_fraction_of_original"] = best
    return (f"speed settings (top_k {dop.nms_param.top_k}, confidence {dop.confidence_threshold:g}) match "
            f"{chosen:.1%} of the original's detections; the exact defaults (top_k {priors}, confidence "
            f"{ssd.cfg.nms.score_threshold:g}) match {best:.1%}: measured parity loss {best - chosen:.1%}")


@register("od-api-ssd-onnx", params=OWN_ONNX_PARAMS,
          summary="export --graph (a TF OD API SSD) --to onnx: the heads in ONNX + caffe_ssd meta_arch.prototxt")
def od_api_ssd_onnx(rin: RecipeInput) -> RecipeOutput:
    pb, cfg = _sources(rin)
    notes: list[str] = []
    score = rin.params.get("score_threshold")
    score = cfg.nms.score_threshold if score is None else score
    iou = rin.params.get("iou_threshold")
    iou = cfg.nms.iou_threshold if iou is None else iou
    keep = rin.params.get("keep_top_k")
    keep = cfg.nms.max_total_detections if keep is None else keep
    t0 = time.monotonic()
    ssd = analyse(pb, cfg, notes)
    model = heads_to_onnx(ssd, rin.workdir)
    route = rewrite(model, cfg, ssd.anchors, normalized=None, score_threshold=score, iou_threshold=iou,
                    per_class=cfg.nms.max_detections_per_class, keep=keep, where=pb.name,
                    heads=list(zip(ssd.heads.box_heads, ssd.heads.class_heads)), name="od_api_ssd",
                    top_k=rin.params.get("top_k"))
    dest = onnx_model.save(route.model, rin.workdir / "model.onnx")
    prototxt = save_meta_arch(route.meta, rin.workdir / PROTOTXT)
    seconds = time.monotonic() - t0
    tol = detection_tolerances(None, rin.tolerances)
    original = original_detector(ssd)
    chosen = chosen_limits(rin.params, OWN_ONNX_PARAMS)
    report = compare_detectors(original, meta_arch_detector(dest, route.meta, ssd.preprocess), verification_images(),
                               tol, standin=rin.standin, chosen=chosen)
    ort = compare_detectors(original, od_api_detector(dest, ssd.preprocess), verification_images(), tol,
                            standin=rin.standin, chosen=chosen)
    for check in ort.checks:
        report.add(f"onnx_runtime: {check.name}", check.value, check.limit, check.kind)
    report.metrics["onnx_runtime"] = ort.metrics["detection"]
    report.metrics["route"] = {**ssd.figures, **route.figures, "seconds": round(seconds, 3)}
    report.notes += [n for n in notes + route.notes if n not in report.notes]
    report.converted = f"{dest.name} + {prototxt.name}"
    if rin.params.get("top_k") is not None or score != cfg.nms.score_threshold:
        notes.append(_speed_setting_loss(ssd, dest, route.meta, report, tol))
    ssd_meta = route.meta.caffe_ssd[0]
    top_k = ssd_meta.detection_output_param.nms_param.top_k

    # The same tail as the zoo's ONNX route: 1-based labels (background 0), so no offset.
    tail = tail_ti_config(score)
    config = bundle_config(ssd, Target.ONNX, "NCHW", {"postprocess": tail["postprocess"], "metric": tail["metric"]})
    return RecipeOutput(
        model=dest, verify=report, extra_files={PROTOTXT: prototxt},
        cut=list(ssd_meta.box_input + ssd_meta.class_input),
        cut_reason="TIDL ONNX SSD: heads described by meta_arch.prototxt (meta_arch_type 3)",
        runtime_options=ssd_runtime_options(META_ARCH_ONNX_SSD, confidence=score, nms=iou, top_k=top_k,
                                            keep_top_k=keep, prototxt=PROTOTXT),
        config=config,
        params={"score_threshold": score, "iou_threshold": iou, "keep_top_k": keep, "top_k": top_k, "input": INPUT_NAME,
                "code_type": "CENTER_SIZE_YXHW", "data_layout": "SEPARATED"},
        original=pb, notes=notes + list(route.notes))
