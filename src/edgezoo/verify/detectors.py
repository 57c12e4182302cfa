"""Detection models as `image -> Detections` callables, whatever their format, plus what limits their output.

- A frozen graph / ONNX / TFLite with detection outputs: the OD API's four (num_detections, detection_boxes,
  detection_scores, detection_classes; COCO ids) -- the published SSD-MobileNet and its ONNX -- or the MLPerf
  ResNet34-SSD's three (bboxes as xmin, ymin, xmax, ymax; labels; scores), or whatever the card's output roles name;
- a .tflite ending in TFLite_Detection_PostProcess (classes 0-based without background: id = class + offset);
- an ONNX cut at the SSD heads plus a caffe_ssd meta-architecture prototxt, decoded by the reference executor.
Each detector knows its `domain`: the score threshold and the number of slots its output can hold, so that the
comparison can restrict both sides to what both can report (and say what falls outside).

This is the one place that reads detections from a model: `*_decoder` functions turn a runner's outputs into
Detections (verification, evaluation and quantization all use them; evaluation runs a model once for several
decoders of its outputs); the `*_detector` functions add the image feed verification uses, on VERIFY_THREADS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.core.errors import EdgezooError, ModelFileError
from edgezoo.detection.detections import Detections
from edgezoo.detection.pipeline_config import load_pipeline_config
from edgezoo.graphs import TensorInfo, base_name, onnx_model
from edgezoo.graphs.runners import load_runner
from edgezoo.preprocessing.card import preprocess
from edgezoo.ssd import ssd_surgery
from edgezoo.tidl.meta_arch.execute import MetaArchExecutor
from edgezoo.tidl.meta_arch.prototxt import MetaArch, load_meta_arch
from edgezoo.tidl.meta_arch.validate import check_meta_arch
from edgezoo.verify import VERIFY_THREADS
from edgezoo.zoo.schema import ModelCard, ModelFormat, Preprocess



@dataclass(frozen=True)
class OutputNames:
    """Which outputs hold a detector's boxes, classes, scores (and valid count), and the box coordinate order."""

    boxes: str
    classes: str
    scores: str
    count: str | None  # None: every row is a detection
    order: str = "yxyx"  # "yxyx" (OD API, TIDL) or "xyxy" (PyTorch / MLPerf ResNet34-SSD)
    scale: tuple[float, float] = (1.0, 1.0)  # box units per normalised unit along x, y (torchvision: pixels)

    def names(self) -> list[str]:
        return [n for n in (self.boxes, self.classes, self.scores, self.count) if n]

    def decode(self, out: dict[str, np.ndarray]) -> Detections:
        boxes = np.asarray(out[self.boxes]).reshape(-1, 4)
        scores = np.asarray(out[self.scores]).reshape(-1)
        classes = np.asarray(out[self.classes]).reshape(-1)
        if self.count:
            n = int(np.asarray(out[self.count]).reshape(-1)[0])  # slots past it are padding
            boxes, scores, classes = boxes[:n], scores[:n], classes[:n]
        if self.order == "xyxy":
            boxes = boxes[:, [1, 0, 3, 2]]
        if self.scale != (1.0, 1.0):
            boxes = boxes / np.array([self.scale[1], self.scale[0], self.scale[1], self.scale[0]])
        return Detections(boxes, scores, np.round(classes).astype(np.int64))


OD_API = OutputNames("detection_boxes", "detection_classes", "detection_scores", "num_detections", "yxyx")
MLPERF_RESNET34 = OutputNames("bboxes", "labels", "scores", None, "xyxy")
KNOWN_OUTPUTS = (OD_API, MLPERF_RESNET34)  # the published detectors' conventions, tried in this order


@dataclass
class Domain:
    """What a detector can report: scores >= threshold (None: unknown), at most `slots` detections per image."""

    threshold: float | None
    slots: int | None
    threshold_source: str = ""  # where the threshold comes from ("pipeline.config", "op attribute", ...)
    nms: str = ""  # "per-class" | "fast (class-agnostic)" | ...


@dataclass
class Detector:
    name: str
    run: Callable[[np.ndarray], Detections]  # HxWx3 uint8 RGB image -> detections (COCO ids)
    domain: Domain
    description: str = ""
    notes: list[str] = field(default_factory=list)
    runner: Any = None  # what close() releases

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()


def _image_input(info: TensorInfo, where: str) -> tuple[str, str]:
    """(layout, dtype) of an image input."""
    if len(info.shape) == 4 and info.shape[3] == 3:
        layout = "NHWC"
    elif len(info.shape) == 4 and info.shape[1] == 3:
        layout = "NCHW"
    else:
        raise ModelFileError(f"{where}: input {info.name} {list(info.shape)} is not an image batch",
                             hint="detection parity feeds one image as NHWC or NCHW")
    return layout, "uint8" if info.dtype == "uint8" else "float32"


def image_feed(runner: Any, spec: Preprocess, where: str,
               transform: Callable[[np.ndarray], np.ndarray] | None = None
               ) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """image -> feed for a one-input model, in that input's own layout and dtype (the card's resize and
    normalisation; see preprocess.preprocess's overrides). `transform`: image -> the input tensor itself, instead
    (a converted model whose preprocessing was cut off is fed exactly what the original's computes)."""
    if len(runner.inputs) != 1:
        raise ModelFileError(f"{where}: {len(runner.inputs)} inputs; a detector takes one image")
    info = runner.inputs[0]
    if transform is not None:
        return lambda image: {info.name: transform(image)}
    layout, dtype = _image_input(info, where)
    return lambda image: {info.name: preprocess(image, spec, dtype=dtype, layout=layout)}


def _find(names: list[str], wanted: str) -> str | None:
    for n in names:
        if base_name(n) == wanted or n == wanted:
            return n
    return None


def _card_outputs(path: Path, card: ModelCard | None) -> OutputNames | None:
    """The outputs the card's roles name for this file's format (None without a card or without those roles)."""
    fmt = ModelFormat.of(path)
    if card is None or fmt is None or fmt not in card.formats:
        return None
    roles = {t.role: base_name(t.name) for t in card.formats[fmt].outputs if t.role}
    if not {"boxes", "classes", "scores"} <= set(roles):
        return None
    order = next((k.order for k in KNOWN_OUTPUTS if k.boxes == roles["boxes"]), "yxyx")
    return OutputNames(roles["boxes"], roles["classes"], roles["scores"], roles.get("num_detections"), order)


def find_outputs(path: Path, names: list[str], card: ModelCard | None = None) -> OutputNames:
    """The detection outputs among a model's output `names`: the card's roles, else a known convention."""
    have = {base_name(n) for n in names}
    candidates = [c for c in (_card_outputs(path, card), *KNOWN_OUTPUTS) if c is not None]
    wanted = next((c for c in candidates if {c.boxes, c.classes, c.scores} <= have), None)
    if wanted is None:
        raise ModelFileError(f"{path}: cannot tell the boxes/classes/scores among its outputs ({', '.join(names)})",
                             hint="expected the OD API's detection_boxes/classes/scores or bboxes/labels/scores; "
                                  "give --model CARD so the card's output roles are used")
    resolved = {}
    for role in ("boxes", "classes", "scores", "count"):
        name = getattr(wanted, role)
        if name is None:
            resolved[role] = None
            continue
        found = _find(names, name)
        if found is None:
            raise ModelFileError(f"{path}: no {name!r} output (the detection {role})",
                                 hint="outputs are: " + ", ".join(names))
        resolved[role] = found
    return OutputNames(**resolved, order=wanted.order)


# ----------------------------------------------------------------------------------------------------------------
# The one adapter: decoders reading Detections from a runner's outputs (and the runners they need).
# Verification wraps them with an image feed (Detector), evaluation with MLPerf's records (evaluation/subjects.py);
# several decoders on one pass (an ONNX SSD's own tail and its meta_arch.prototxt) share one inference.

# LiteRT 2.3's multi-threaded regular NMS skips foreground class `num_threads` (measured; see
# ssd/ssd_surgery.litert_regular_nms_skipped_classes): a model ending in TFLite_Detection_PostProcess always runs
# on this many threads, whoever reads it.
POSTPROCESS_THREADS = 1


@dataclass
class Decoder:
    """How one detector reads its detections from a pass's outputs, and what limits them."""

    fetch: list[str]  # the outputs it reads
    decode: Callable[[dict[str, np.ndarray]], Detections]
    domain: Domain
    description: str = ""
    notes: list[str] = field(default_factory=list)


def outputs_runner(path: Path, card: ModelCard | None = None, *, threads: int | None) -> Any:
    """The runner of a model with detection outputs. A frozen graph's sink nodes may not be all its outputs (and its
    runner fetches any tensor by name, with a clean error when missing): the card's names or the OD API's are asked
    for directly."""
    if ModelFormat.of(path) is ModelFormat.TF:
        return load_runner(path, outputs=(_card_outputs(path, card) or OD_API).names(), threads=threads)
    return load_runner(path, threads=threads)


def outputs_decoder(runner: Any, card: ModelCard | None = None, threshold: float | None = None,
                    threshold_source: str = "", outputs: OutputNames | None = None) -> Decoder:
    """The OD API's four outputs, the MLPerf ResNet34-SSD's three, the card's output roles (see find_outputs), or
    `outputs` as found by other means (an ONNX SSD's outputs identified by probing its post-processing)."""
    path = Path(runner.path)
    if outputs is None:
        outputs = find_outputs(path, [o.name for o in runner.outputs], card)
    slots_shape = next((o.shape for o in runner.outputs if o.name == outputs.scores), ())
    slots = slots_shape[-1] if slots_shape and isinstance(slots_shape[-1], int) and slots_shape[-1] > 0 else None
    described = ", ".join(outputs.names()) + (" (boxes x, y order)" if outputs.order == "xyxy" else "")
    return Decoder(outputs.names(), outputs.decode, Domain(threshold, slots, threshold_source, nms="per-class"),
                   f"detection outputs ({described})")


def postprocess_runner(path: Path) -> Any:
    """The runner of a .tflite ending in TFLite_Detection_PostProcess, on POSTPROCESS_THREADS."""

    return load_runner(path, threads=POSTPROCESS_THREADS)


def postprocess_decoder(runner: Any, label_offset: int | None = None) -> Decoder:
    """A .tflite ending in TFLite_Detection_PostProcess: outputs by the op's output tensors, domain by its
    attributes; classes 0-based among the foreground -> dataset ids (+ 1 when the logits have a background column)."""

    path = Path(runner.path)
    ops = ssd_surgery.read_postprocess_ops(path)
    if len(ops) != 1:
        raise ModelFileError(f"{path}: {len(ops)} TFLite_Detection_PostProcess ops, expected exactly one")
    op = ops[0]
    attrs = op["attributes"]
    boxes_name, classes_name, scores_name, count_name = op["outputs"]
    if label_offset is None:
        shape = runner.tensor_shape(op["inputs"][1])
        columns = int(shape[-1]) if shape else attrs.get("num_classes", 0) + 1
        label_offset = 1 if columns == attrs.get("num_classes", 0) + 1 else 0
    per_detection = int(attrs.get("max_classes_per_detection", 1)) if not attrs.get("use_regular_nms") else 1

    def decode(out: dict[str, np.ndarray]) -> Detections:
        n = int(np.asarray(out[count_name]).reshape(-1)[0]) * per_detection  # slots past it are garbage
        return Detections(np.asarray(out[boxes_name]).reshape(-1, 4)[:n], np.asarray(out[scores_name]).reshape(-1)[:n],
                          np.round(np.asarray(out[classes_name]).reshape(-1)[:n]).astype(np.int64) + label_offset)

    regular = bool(attrs.get("use_regular_nms"))
    domain = Domain(float(attrs["nms_score_threshold"]), int(attrs["max_detections"]) * per_detection,
                    "TFLite_Detection_PostProcess attribute",
                    nms="per-class (regular)" if regular else "fast (class-agnostic)")
    desc = (f"TFLite_Detection_PostProcess: {'regular' if regular else 'fast'} NMS, max_detections "
            f"{attrs['max_detections']}, score >= {attrs['nms_score_threshold']:.4g}, IoU > "
            f"{attrs['nms_iou_threshold']:.4g}, detections_per_class {attrs.get('detections_per_class')}")
    return Decoder(list(op["outputs"]), decode, domain, desc)


def _prototxt_name(prototxt: Path | Any, where: str | None) -> str:
    return where or (Path(prototxt).name if isinstance(prototxt, (str, Path)) else "meta_arch.prototxt")


def meta_arch_decoder(onnx_path: Path, prototxt: Path | Any, where: str | None = None) -> Decoder:
    """The SSD heads of an ONNX decoded by a caffe_ssd prototxt's semantics (numpy reference executor).

    Validates the prototxt against the graph first (ConfigError listing every problem). `where`: the prototxt's name
    in messages (default: the file's name). Its `fetch` are the head tensors: the runner must be asked for them."""

    meta = prototxt if isinstance(prototxt, MetaArch) else load_meta_arch(Path(prototxt))
    where = _prototxt_name(prototxt, where)
    ssd = meta.single_ssd(where)
    warnings = check_meta_arch(meta, onnx_model.load(onnx_path), where=where)
    executor = MetaArchExecutor(ssd, where=where)
    heads = list(dict.fromkeys(list(ssd.box_input) + list(ssd.class_input)))

    def decode(out: dict[str, np.ndarray]) -> Detections:
        return executor([out[t] for t in ssd.box_input], [out[t] for t in ssd.class_input]).detections()

    dop = ssd.detection_output_param
    keep = dop.keep_top_k if dop is not None and dop.keep_top_k is not None and dop.keep_top_k > -1 else None
    conf = dop.confidence_threshold if dop is not None else None
    domain = Domain(conf, keep, "prototxt confidence_threshold (score > threshold)",
                    nms="per-class (Caffe: top_k before NMS)")
    return Decoder(heads, decode, domain, "caffe_ssd meta-architecture (reference executor)",
                   notes=[f"prototxt {p.severity}: {p}" for p in warnings])


def _detector(name: str, runner: Any, decoder: Decoder, spec: Preprocess,
              transform: Callable[[np.ndarray], np.ndarray] | None = None) -> Detector:
    """image -> Detections: the adapter fed one image in the model's own input layout and dtype (or `transform`'s
    tensor, see image_feed)."""
    feed = image_feed(runner, spec, str(runner.path), transform)

    def run(image: np.ndarray) -> Detections:
        return decoder.decode(runner.run(feed(image), decoder.fetch))

    return Detector(name, run, decoder.domain, decoder.description, notes=list(decoder.notes), runner=runner)


# ----------------------------------------------------------------------------------------------------------------
# Verification's detectors (runtimes pinned to VERIFY_THREADS)


def od_api_detector(path: Path, spec: Preprocess, card: ModelCard | None = None,
                    threshold: float | None = None, threshold_source: str = "",
                    outputs: OutputNames | None = None,
                    transform: Callable[[np.ndarray], np.ndarray] | None = None) -> Detector:
    """A model with detection outputs (frozen graph, ONNX or TFLite): the OD API's four, the MLPerf ResNet34-SSD's
    three, the card's output roles (see find_outputs), or `outputs` as found by other means."""

    if outputs is not None:
        runner = load_runner(Path(path), outputs=outputs.names(), threads=VERIFY_THREADS)
    else:
        runner = outputs_runner(Path(path), card, threads=VERIFY_THREADS)
    decoder = outputs_decoder(runner, card, threshold, threshold_source, outputs)
    return _detector(str(path), runner, decoder, spec, transform)


def tflite_postprocess_detector(path: Path, spec: Preprocess, label_offset: int | None = None) -> Detector:
    """A .tflite ending in TFLite_Detection_PostProcess (on POSTPROCESS_THREADS)."""
    runner = postprocess_runner(Path(path))
    return _detector(str(path), runner, postprocess_decoder(runner, label_offset), spec)


def meta_arch_detector(onnx_path: Path, prototxt: Path | Any, spec: Preprocess, where: str | None = None,
                       transform: Callable[[np.ndarray], np.ndarray] | None = None) -> Detector:
    """An ONNX cut at the SSD heads, decoded by the caffe_ssd prototxt's semantics (numpy reference executor).

    Validates the prototxt against the graph first (ConfigError listing every problem). `where`: the prototxt's name
    in messages (default: the file's name)."""

    decoder = meta_arch_decoder(Path(onnx_path), prototxt, where)
    runner = load_runner(onnx_path, outputs=decoder.fetch, threads=VERIFY_THREADS)
    return _detector(f"{Path(onnx_path).name} + {_prototxt_name(prototxt, where)}", runner, decoder, spec,
                     transform)


def pipeline_config_next_to(path: Path) -> tuple[float, int] | None:
    """(score_threshold, max_total_detections) from a pipeline.config beside a frozen graph, as in the tarball."""
    config = Path(path).with_name("pipeline.config")
    if not config.is_file():
        return None

    try:
        cfg = load_pipeline_config(config)
    except EdgezooError:
        return None
    return cfg.nms.score_threshold, cfg.nms.max_total_detections


def load_detector(path: Path, spec: Preprocess, *, card: ModelCard | None = None, prototxt: Any = None,
                  threshold: float | None = None, threshold_source: str = "") -> Detector:
    """The right adapter for a model file (and an optional prototxt for an ONNX cut at the heads)."""
    path = Path(path)
    if prototxt is not None:
        return meta_arch_detector(path, prototxt, spec)
    if ModelFormat.of(path) is ModelFormat.TFLITE:
        if ssd_surgery.read_postprocess_ops(path):
            return tflite_postprocess_detector(path, spec)
    slots = None
    if ModelFormat.of(path) is ModelFormat.TF and threshold is None:
        found = pipeline_config_next_to(path)
        if found:
            (threshold, slots), threshold_source = found, "pipeline.config beside the graph"
    detector = od_api_detector(path, spec, card, threshold, threshold_source)
    if slots is not None and detector.domain.slots is None:
        detector.domain.slots = slots  # max_total_detections (the graph's while loop hides the static shape)
    return detector
