"""Detection models as `image -> Detections` callables, whatever their format, plus what limits their output.

- A frozen graph / ONNX / TFLite whose outputs are the OD API's four (num_detections, detection_boxes,
  detection_scores, detection_classes; COCO ids) -- the published SSD-MobileNet and its ONNX;
- a .tflite ending in TFLite_Detection_PostProcess (classes 0-based without background: id = class + offset);
- an ONNX cut at the SSD heads plus a caffe_ssd meta-architecture prototxt, decoded by the reference executor.
Each detector knows its `domain`: the score threshold and the number of slots its output can hold, so that the
comparison can restrict both sides to what both can report (and say what falls outside).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.errors import EdgezooError, ModelFileError
from edgezoo.graphs import TensorInfo, base_name
from edgezoo.verify.detection_match import Detections
from edgezoo.zoo.schema import ModelCard, ModelFormat, Preprocess

OD_API_OUTPUTS = {"num_detections": "num_detections", "boxes": "detection_boxes", "scores": "detection_scores",
                  "classes": "detection_classes"}


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


def _feed(runner: Any, spec: Preprocess, where: str) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    from edgezoo.preprocess import preprocess

    if len(runner.inputs) != 1:
        raise ModelFileError(f"{where}: {len(runner.inputs)} inputs; a detector takes one image")
    info = runner.inputs[0]
    layout, dtype = _image_input(info, where)
    return lambda image: {info.name: preprocess(image, spec, dtype=dtype, layout=layout)}


def _find(names: list[str], wanted: str) -> str | None:
    for n in names:
        if base_name(n) == wanted or n == wanted:
            return n
    return None


def od_api_detector(path: Path, spec: Preprocess, card: ModelCard | None = None,
                    threshold: float | None = None, threshold_source: str = "") -> Detector:
    """A model with the OD API's four outputs (frozen graph, its ONNX, or a TFLite with the same names)."""
    from edgezoo.runners import load_runner

    roles = dict(OD_API_OUTPUTS)
    if card is not None:
        fmt = {".pb": ModelFormat.TF, ".onnx": ModelFormat.ONNX}.get(path.suffix.lower())
        if fmt is not None and fmt in card.formats:
            roles.update({t.role: base_name(t.name) for t in card.formats[fmt].outputs if t.role in roles})
    if path.suffix.lower() == ".pb":  # a graph's runner fetches any tensor by name (clean error when missing)
        resolved = dict(roles)
        runner = load_runner(path, outputs=list(resolved.values()))
    else:
        runner = load_runner(path)
        names = [o.name for o in runner.outputs]
        resolved = {}
        for role, wanted in roles.items():
            found = _find(names, wanted)
            if found is None:
                raise ModelFileError(f"{path}: no {wanted!r} output (the OD API's {role})",
                                     hint="outputs are: " + ", ".join(names))
            resolved[role] = found
    feed = _feed(runner, spec, str(path))
    slots_shape = next((o.shape for o in runner.outputs if o.name == resolved["scores"]), ())
    slots = slots_shape[-1] if slots_shape and isinstance(slots_shape[-1], int) and slots_shape[-1] > 0 else None

    def run(image: np.ndarray) -> Detections:
        out = runner.run(feed(image), list(resolved.values()))
        n = int(np.asarray(out[resolved["num_detections"]]).reshape(-1)[0])
        return Detections(np.asarray(out[resolved["boxes"]]).reshape(-1, 4)[:n],
                          np.asarray(out[resolved["scores"]]).reshape(-1)[:n],
                          np.round(np.asarray(out[resolved["classes"]]).reshape(-1)[:n]).astype(np.int64))

    domain = Domain(threshold, slots, threshold_source, nms="per-class")
    return Detector(str(path), run, domain, "OD API outputs (num_detections, detection_boxes/scores/classes)")


def tflite_postprocess_detector(path: Path, spec: Preprocess, label_offset: int | None = None) -> Detector:
    """A .tflite ending in TFLite_Detection_PostProcess: outputs by the op's output tensors, domain by its attributes."""
    from edgezoo.graphs import ssd_surgery

    ops = ssd_surgery.read_postprocess_ops(path)
    if len(ops) != 1:
        raise ModelFileError(f"{path}: {len(ops)} TFLite_Detection_PostProcess ops, expected exactly one")
    op = ops[0]
    attrs = op["attributes"]
    boxes_name, classes_name, scores_name, count_name = op["outputs"]
    if label_offset is None:
        # Classes are indexes among the foreground classes: with a background column, dataset id = index + 1.
        cls_tensor = next((t for t in _tensor_shapes(path) if t[0] == op["inputs"][1]), None)
        columns = int(cls_tensor[1][-1]) if cls_tensor else attrs.get("num_classes", 0) + 1
        label_offset = 1 if columns == attrs.get("num_classes", 0) + 1 else 0
    per_detection = int(attrs.get("max_classes_per_detection", 1)) if not attrs.get("use_regular_nms") else 1
    # One thread on purpose: LiteRT 2.3's multi-threaded regular NMS skips foreground class `num_threads`
    # (measured; see graphs/ssd_surgery.litert_regular_nms_skipped_classes).
    runner = _SingleThreadTflite(path)
    feed = _feed(runner, spec, str(path))

    def run(image: np.ndarray) -> Detections:
        out = runner.run(feed(image), op["outputs"])
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
    return Detector(str(path), run, domain, desc)


class _SingleThreadTflite:
    """LiteRT on one thread, reading output tensors by name (the shared runner uses two threads)."""

    def __init__(self, path: Path) -> None:
        from edgezoo.graphs import tflite_model

        self.path = path
        self._interp = tflite_model.load_interpreter(path, num_threads=1)
        self.inputs = tflite_model.inputs(self._interp)
        self._index = {d["name"]: d["index"] for d in self._interp.get_tensor_details()}
        self._inputs = {d["name"]: d for d in self._interp.get_input_details()}

    def run(self, feed: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        for name, value in feed.items():
            detail = self._inputs[name]
            if tuple(detail["shape"]) != value.shape:
                raise EdgezooError(f"{self.path}: input {name} expects {list(detail['shape'])}, got {list(value.shape)}")
            self._interp.set_tensor(detail["index"], value.astype(detail["dtype"]))
        self._interp.invoke()
        return {n: np.array(self._interp.get_tensor(self._index[n])) for n in outputs}


def _tensor_shapes(path: Path) -> list[tuple[str, list[int]]]:
    from edgezoo.graphs import tflite_model

    interp = tflite_model.load_interpreter(path)
    return [(d["name"], [int(x) for x in d["shape"]]) for d in interp.get_tensor_details()]


def meta_arch_detector(onnx_path: Path, prototxt: Path | Any, spec: Preprocess) -> Detector:
    """An ONNX cut at the SSD heads, decoded by the caffe_ssd prototxt's semantics (numpy reference executor)."""
    from edgezoo.detection.meta_exec import MetaArchExecutor
    from edgezoo.detection.meta_validate import check_meta_arch
    from edgezoo.detection.prototxt import MetaArch, load_meta_arch
    from edgezoo.graphs import onnx_model
    from edgezoo.runners import load_runner

    meta = prototxt if isinstance(prototxt, MetaArch) else load_meta_arch(Path(prototxt))
    where = "meta_arch.prototxt" if isinstance(prototxt, MetaArch) else Path(prototxt).name
    ssd = meta.single_ssd(where)
    warnings = check_meta_arch(meta, onnx_model.load(onnx_path), where=where)
    executor = MetaArchExecutor(ssd, where=where)
    heads = list(dict.fromkeys(list(ssd.box_input) + list(ssd.class_input)))
    runner = load_runner(onnx_path, outputs=heads)
    feed = _feed(runner, spec, str(onnx_path))

    def run(image: np.ndarray) -> Detections:
        out = runner.run(feed(image), heads)
        return executor([out[t] for t in ssd.box_input], [out[t] for t in ssd.class_input]).detections()

    dop = ssd.detection_output_param
    keep = dop.keep_top_k if dop is not None and dop.keep_top_k is not None and dop.keep_top_k > -1 else None
    conf = dop.confidence_threshold if dop is not None else None
    domain = Domain(conf, keep, "prototxt confidence_threshold (score > threshold)",
                    nms="per-class (Caffe: top_k before NMS)")
    return Detector(f"{onnx_path.name} + {where}", run, domain, "caffe_ssd meta-architecture (reference executor)",
                    notes=[f"prototxt {p.severity}: {p}" for p in warnings])


def pipeline_config_next_to(path: Path) -> tuple[float, int] | None:
    """(score_threshold, max_total_detections) from a pipeline.config beside a frozen graph, as in the tarball."""
    config = Path(path).with_name("pipeline.config")
    if not config.is_file():
        return None
    from edgezoo.detection.pipeline_config import load_pipeline_config

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
    if path.suffix.lower() == ".tflite":
        from edgezoo.graphs import ssd_surgery

        if ssd_surgery.read_postprocess_ops(path):
            return tflite_postprocess_detector(path, spec)
    slots = None
    if path.suffix.lower() == ".pb" and threshold is None:
        found = pipeline_config_next_to(path)
        if found:
            (threshold, slots), threshold_source = found, "pipeline.config beside the graph"
    detector = od_api_detector(path, spec, card, threshold, threshold_source)
    if slots is not None and detector.domain.slots is None:
        detector.domain.slots = slots  # max_total_detections (the graph's while loop hides the static shape)
    return detector
