"""SSD-MobileNet v1 recipes.

`ssd-tf-to-tflite-postprocess`: what TF 1.15 + the Object Detection API's export_tflite_ssd_graph + the custom-op
conversion did, on TF 2.x from the published frozen graph and pipeline.config alone (ssd/ssd_surgery.py):
anchors generated from the config and checked against the graph's anchor tensor, a TFLite_Detection_PostProcess
with every attribute set, conversion with all four outputs named, then detection parity against the frozen graph
on real photographs. Options (recorded in the manifest): max_detections (default 4000 as TI's recipe; below 100 a
warning: the original keeps 100), nms regular|fast (default regular, the original's per-class NMS),
score_threshold / iou_threshold (default: the pipeline.config's), detections_per_class (default: the config's
max_detections_per_class), max_classes_per_detection (fast NMS only, default 1).

`ssd-mobilenet-onnx-caffe-meta`: the ONNX route (recipes/ssd_mobilenet_onnx.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.bundle.config import (META_ARCH_TFLITE_SSD, YXYX_TO_XYXY, detection_postprocess, shifted_label_map,
                                   ssd_runtime_options)
from edgezoo.core.errors import ConfigError, RecipeError
from edgezoo.core.report import shortest_float32
from edgezoo.detection.anchors import check_against_graph, generate_anchors
from edgezoo.detection.pipeline_config import SsdPipelineConfig, load_pipeline_config
from edgezoo.detection.tflite_postprocess import PostProcessParams
from edgezoo.graphs import tf_graph
from edgezoo.graphs.runners import load_runner
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.params import MAX_DETECTION_SLOTS, SLOTS_WHY, ParamSpec, ParamType, chosen_limits
from edgezoo.ssd import ssd_surgery
from edgezoo.verify.detection import verify_detection_models
from edgezoo.zoo.schema import ModelCard, ModelFormat

DEFAULT_MAX_DETECTIONS = 4000
NMS_CHOICES = ("regular", "fast")
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class SsdTfliteOptions:
    max_detections: int
    nms: str
    score_threshold: float
    iou_threshold: float
    detections_per_class: int
    max_classes_per_detection: int

    def postprocess_params(self, cfg: SsdPipelineConfig) -> PostProcessParams:
        c = cfg.box_coder
        return PostProcessParams(
            max_detections=self.max_detections, nms_score_threshold=self.score_threshold,
            nms_iou_threshold=self.iou_threshold, num_classes=cfg.num_classes,
            max_classes_per_detection=self.max_classes_per_detection,
            detections_per_class=self.detections_per_class, use_regular_nms=self.nms == "regular",
            y_scale=c.y_scale, x_scale=c.x_scale, h_scale=c.height_scale, w_scale=c.width_scale)


# The parameters of both SSD-MobileNet recipes (validated before any work; see recipes/params.py). Thresholds
# default to the pipeline.config's, which is only read once the sources are there.
SCORE_THRESHOLD = ParamSpec("score_threshold", ParamType.FLOAT, "score below which detections are dropped",
                            low=0.0, high=1.0, default_text="the pipeline.config's (0.3 published)")
IOU_THRESHOLD = ParamSpec("iou_threshold", ParamType.FLOAT, "NMS IoU threshold", low=0.0, high=1.0, low_open=True,
                          default_text="the pipeline.config's (0.6 published)")
TFLITE_PARAMS = (
    ParamSpec("max_detections", ParamType.INT, "detections kept by TFLite_Detection_PostProcess (the original keeps "
              "100; below that a warning)", default=DEFAULT_MAX_DETECTIONS, low=1, high=MAX_DETECTION_SLOTS,
              why_high=SLOTS_WHY),
    ParamSpec("nms", ParamType.CHOICE, "regular: per-class NMS as the original; fast: class-agnostic", default="regular",
              choices=NMS_CHOICES),
    SCORE_THRESHOLD,
    IOU_THRESHOLD,
    ParamSpec("detections_per_class", ParamType.INT, "regular NMS: boxes kept per class", low=1,
              high=MAX_DETECTION_SLOTS, why_high=SLOTS_WHY,
              default_text="the pipeline.config's max_detections_per_class"),
    ParamSpec("max_classes_per_detection", ParamType.INT, "fast NMS: classes reported per box", default=1, low=1,
              high=MAX_CLASSES, why_high="no detection set has more classes"),
)
ONNX_PARAMS = (
    SCORE_THRESHOLD,
    IOU_THRESHOLD,
    ParamSpec("keep_top_k", ParamType.INT, "detections kept after NMS (TIDL object_detection:keep_top_k)", low=1,
              high=MAX_DETECTION_SLOTS, why_high=SLOTS_WHY,
              default_text="the pipeline.config's max_total_detections"),
)


def _check_output_slots(params: Mapping[str, Any]) -> None:
    """The op's outputs hold max_detections x max_classes_per_detection boxes: the product is what gets allocated."""
    slots = params["max_detections"] * params["max_classes_per_detection"]
    if slots > MAX_DETECTION_SLOTS:
        raise RecipeError(f"max_detections x max_classes_per_detection = {slots:,} output slots; at most "
                          f"{MAX_DETECTION_SLOTS:,} ({SLOTS_WHY})", hint="lower one of them")


def resolve_options(params: Mapping[str, Any], cfg: SsdPipelineConfig, notes: list[str]) -> SsdTfliteOptions:
    """The effective options: the (validated) params over the pipeline.config's defaults (RecipeError: exit 2)."""
    def given_or(key: str, default: Any) -> Any:
        value = params.get(key)
        return default if value is None else value

    opts = SsdTfliteOptions(
        max_detections=given_or("max_detections", DEFAULT_MAX_DETECTIONS),
        nms=given_or("nms", "regular"),
        score_threshold=given_or("score_threshold", cfg.nms.score_threshold),
        iou_threshold=given_or("iou_threshold", cfg.nms.iou_threshold),
        detections_per_class=given_or("detections_per_class", cfg.nms.max_detections_per_class),
        max_classes_per_detection=given_or("max_classes_per_detection", 1),
    )
    try:
        opts.postprocess_params(cfg).validate("TFLite_Detection_PostProcess")
    except ConfigError as exc:
        raise RecipeError(exc.message, hint=exc.hint) from None
    if opts.max_detections < cfg.nms.max_total_detections:
        notes.append(f"WARNING: max_detections {opts.max_detections} is below the original's "
                     f"{cfg.nms.max_total_detections}: the TFLite model drops detections the original keeps "
                     "(the 'only 10 detections' trap)")
    return opts


def _card(rin: RecipeInput) -> ModelCard:
    if rin.card is None:
        raise RecipeError("this recipe needs a model card (pipeline.config and tensor names come from it)")
    return rin.card


def config_member(card: ModelCard, archive: str) -> str:
    members = card.file(archive).members
    found = [m for m in members if m.endswith("pipeline.config")]
    if not found:
        raise RecipeError(f"{card.id}: {archive} lists no pipeline.config member", hint="add it to files[].members")
    return found[0]


def graph_anchor_tensor(pb: Path, name: str, input_name: str, size: tuple[int, int]) -> np.ndarray | None:
    """The frozen graph's anchor tensor evaluated on a blank image (None when the graph has no such node)."""
    graph_def = tf_graph.load_graph_def(pb)
    if name not in {n.name for n in graph_def.node}:
        return None
    runner = load_runner(pb, outputs=[name])
    return runner.run({input_name: np.zeros((1, size[0], size[1], 3), np.uint8)}, [name])[name]


def build_tflite(pb: Path, cfg: SsdPipelineConfig, opts: SsdTfliteOptions, card: ModelCard, workdir: Path,
                 notes: list[str], anchors_override: np.ndarray | None = None,
                 representative: Any = None) -> tuple[Path, dict[str, Any]]:
    """Surgery + conversion + check of the converted op; returns the .tflite and figures for the report.
    `representative`: calibration frames for int8 (edgezoo quantize --scheme tflite-int8)."""
    spec = card.format(ModelFormat.TF)
    size = (cfg.image_height, cfg.image_width)
    normalized = spec.internal.get("normalized_input", "Preprocessor/sub")
    graph_def = tf_graph.load_graph_def(pb)
    where = pb.name
    heads = ssd_surgery.find_heads(graph_def, where)
    probe = ssd_surgery.replace_input(graph_def, normalized, [1, *size, 3], where)
    maps, per_loc, n, columns = ssd_surgery.head_shapes(probe, heads, [1, *size, 3], where)
    anchors = generate_anchors(cfg.anchors, maps, size)
    if tuple(s.count for s in anchors.layers) != per_loc:
        raise RecipeError(f"{where}: the heads predict {list(per_loc)} boxes per location, the pipeline.config's "
                          f"anchor generator gives {[s.count for s in anchors.layers]}",
                          hint="the pipeline.config does not describe this graph")
    figures: dict[str, Any] = {"anchors": len(anchors), "feature_maps": [list(m) for m in maps],
                               "boxes_per_location": list(per_loc), "box_concat": heads.box_concat,
                               "class_concat": heads.class_concat}
    anchor_name = spec.internal.get("anchors")
    graph_anchors = graph_anchor_tensor(pb, anchor_name, spec.inputs[0].name, size) if anchor_name else None
    if graph_anchors is None:
        notes.append("the graph has no anchor tensor: anchors come from pipeline.config alone (not cross-checked)")
    else:
        figures["anchors_max_abs_diff_vs_graph"] = check_against_graph(anchors, graph_anchors, f"{where}: {anchor_name}")
    center = anchors.center if anchors_override is None else np.asarray(anchors_override, np.float32)
    box_name = spec.internal.get("box_encodings")
    result = ssd_surgery.build_tflite_graph(
        graph_def, normalized_input=normalized, input_size=size, anchors_center=center,
        params=opts.postprocess_params(cfg), score_converter=cfg.score_converter, logit_scale=cfg.logit_scale,
        where=where, expected_box_concat=box_name, notes=notes)
    model = ssd_surgery.convert_to_tflite(result.graph_def, workdir / "model.tflite", size, workdir,
                                          representative=representative)
    check_converted_op(model, opts.postprocess_params(cfg))
    return model, figures


def check_converted_op(model: Path, params: PostProcessParams) -> None:
    """Exactly one TFLite_Detection_PostProcess, carrying the requested attributes, four outputs."""
    ops = ssd_surgery.read_postprocess_ops(model)
    if len(ops) != 1:
        raise RecipeError(f"{model.name}: {len(ops)} TFLite_Detection_PostProcess ops after conversion, expected 1")
    attrs = ops[0]["attributes"]
    want = {"max_detections": params.max_detections, "max_classes_per_detection": params.max_classes_per_detection,
            "detections_per_class": params.detections_per_class, "use_regular_nms": params.use_regular_nms,
            "nms_score_threshold": params.nms_score_threshold, "nms_iou_threshold": params.nms_iou_threshold,
            "num_classes": params.num_classes, "y_scale": params.y_scale, "x_scale": params.x_scale,
            "h_scale": params.h_scale, "w_scale": params.w_scale}
    for key, value in want.items():
        got = attrs.get(key)
        same = got is not None and (abs(float(got) - float(value)) <= 1e-6 * max(1.0, abs(float(value)))
                                    if isinstance(value, float) else got == value)
        if not same:
            raise RecipeError(f"{model.name}: TFLite_Detection_PostProcess attribute {key} is {got!r} after "
                              f"conversion, requested {value!r}", hint="the converter dropped or changed it")
    if len(ops[0]["outputs"]) != 4:
        raise RecipeError(f"{model.name}: the op has {len(ops[0]['outputs'])} outputs, expected 4")


def tidl_runtime_options(opts: SsdTfliteOptions) -> dict[str, Any]:
    """TIDL TFLite delegate options: meta_arch_type 1 (TFLite SSD, derived from the op), thresholds and counts."""
    return ssd_runtime_options(META_ARCH_TFLITE_SSD, confidence=shortest_float32(opts.score_threshold),
                               nms=shortest_float32(opts.iou_threshold), top_k=opts.detections_per_class,
                               keep_top_k=opts.max_detections)


def _config(opts: SsdTfliteOptions) -> dict[str, Any]:
    """TI's post-processing for the op's outputs: boxes (ymin, xmin, ymax, xmax), classes (0-based), scores, count."""
    return {"postprocess": detection_postprocess(formatter=YXYX_TO_XYXY, threshold=opts.score_threshold),
            "metric": {"label_offset_pred": shifted_label_map(1, -1, 90)}}


def _litert_thread_warning(workdir: Path, report: Any, notes: list[str]) -> None:
    """Measure the installed LiteRT's multi-threaded regular NMS and warn when it loses a class."""
    from importlib import metadata

    skipped = ssd_surgery.litert_regular_nms_skipped_classes(workdir, threads=2)
    report.metrics["litert_regular_nms_skipped_classes_with_2_threads"] = skipped
    if skipped:
        try:
            version = metadata.version("ai-edge-litert")
        except metadata.PackageNotFoundError:
            version = "?"
        text = (f"WARNING: ai-edge-litert {version} runs regular NMS wrongly on 2+ threads: with num_threads=2 "
                f"foreground class index {skipped[0]} (COCO id {skipped[0] + 1}) is never output (measured on a "
                "probe model); parity was verified with num_threads=1. On CPU run this model with num_threads=1 "
                "(TIDL's own post-processing is not affected)")
        notes.append(text)
        report.notes.append(text)


def _sources(rin: RecipeInput) -> tuple[ModelCard, Path, SsdPipelineConfig]:
    card = _card(rin)
    spec = card.format(ModelFormat.TF)
    return card, rin.source(spec.file, spec.member), load_pipeline_config(rin.source(spec.file,
                                                                                     config_member(card, spec.file)))


def calibrated_tflite(rin: RecipeInput, representative: Any) -> Path:
    """The recipe's surgery redone from the same sources and options, converted with calibration frames: int8
    backbone and heads, TFLite_Detection_PostProcess float on their dequantized outputs (checked as the recipe
    checks it)."""
    card, pb, cfg = _sources(rin)
    opts = resolve_options(rin.params, cfg, [])
    model, _ = build_tflite(pb, cfg, opts, card, rin.workdir, [], representative=representative)
    return Path(model)


@register("ssd-tf-to-tflite-postprocess", params=TFLITE_PARAMS, precheck=_check_output_slots,
          summary="SSD frozen graph + pipeline.config -> TFLite ending in TFLite_Detection_PostProcess, verified",
          calibrated=calibrated_tflite)
def ssd_tf_to_tflite(rin: RecipeInput) -> RecipeOutput:
    card, pb, cfg = _sources(rin)
    spec = card.format(ModelFormat.TF)
    notes: list[str] = []
    opts = resolve_options(rin.params, cfg, notes)
    t0 = time.monotonic()
    model, figures = build_tflite(pb, cfg, opts, card, rin.workdir, notes)
    convert_seconds = time.monotonic() - t0
    report = verify_detection_models(pb, model, card, rin.tolerances, standin=rin.standin,
                                     original_threshold=cfg.nms.score_threshold,
                                     original_slots=cfg.nms.max_total_detections,
                                     chosen=chosen_limits(rin.params, TFLITE_PARAMS))
    report.metrics["surgery"] = {**figures, "convert_seconds": round(convert_seconds, 3)}
    if opts.nms == "regular":
        _litert_thread_warning(rin.workdir, report, notes)
    notes.append(f"rebuilt export_tflite_ssd_graph on TF 2.x: input {ssd_surgery.INPUT_NAME} [1,"
                 f"{cfg.image_height},{cfg.image_width},3] replaces {spec.internal.get('normalized_input')}; "
                 f"{figures['anchors']} anchors from pipeline.config; TFLite_Detection_PostProcess with "
                 f"{opts.nms} NMS, max_detections {opts.max_detections}")
    return RecipeOutput(model=model, verify=report, cut=list(ssd_surgery.POSTPROCESS_OUTPUTS),
                        cut_reason="TFLite SSD ends in TFLite_Detection_PostProcess (TIDL meta_arch_type 1)",
                        runtime_options=tidl_runtime_options(opts), config=_config(opts),
                        params=asdict(opts), original=pb, notes=notes)
