"""`eval --semantics ti`: a bundle evaluated as TI's benchmark would evaluate it on a PC in float.

A semantics layer over evaluation.subjects: the same bundle, the same runtime, but TI's preprocessing arithmetic
(preprocessing.ti), the model's outputs taken in the model's output order and put through TI's post-processing
as config.yaml states it (ti_postprocess), and TI's label mapping and scoring (ti_scoring). An ONNX SSD bundle with
a meta_arch.prototxt also gives the prototxt's decoding (what TIDL runs on the device) under TI's post-processing:
its detections are written into the graph's outputs in the graph's own layout, which is where TIDL puts them.

An original has no config.yaml: under TI's semantics it is fed with TI's arithmetic from the config its card gives
a bundle and scored with TI's clipping, threshold and scoring (ti_original_subject), so a bundle's TI figure is
compared with its original under the same arithmetic and the delta is what the conversion changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.bundle.config import card_config
from edgezoo.bundle.provenance import is_standin
from edgezoo.bundle.reader import META_ARCH, read_bundle
from edgezoo.core.errors import EdgezooError
from edgezoo.datasets.coco_categories import COCO_CATEGORIES
from edgezoo.evaluation import metrics, ti_scoring
from edgezoo.evaluation.subjects import Runtime, Subject, SubjectError, SubjectSource, bundle_folder, score_threshold
from edgezoo.evaluation.ti_postprocess import TI_SETTINGS_DETECTION_THRESHOLD, TiDetectionPost
from edgezoo.graphs import onnx_model, tflite_model
from edgezoo.graphs.runners import load_runner
from edgezoo.preprocessing.ti import TiPreprocess
from edgezoo.ssd import ssd_surgery
from edgezoo.tidl.meta_arch.execute import MetaArchExecutor
from edgezoo.tidl.meta_arch.prototxt import load_meta_arch
from edgezoo.tidl.meta_arch.validate import check_meta_arch
from edgezoo.zoo.schema import Target, Task

TI_SUFFIX = " [TI]"


class Semantics(str, Enum):
    """Whose arithmetic an evaluation follows: MLPerf's reference app, TI's benchmark, or both side by side."""

    MLPERF = "mlperf"
    TI = "ti"
    BOTH = "both"


@dataclass(frozen=True)
class TiSubjectSource(SubjectSource):
    """How another process (a Ray actor) builds a TI-semantics subject again: the MLPerf source's fields, built
    through this layer (pickled by class, so the actor imports this module itself)."""

    def build(self) -> Subject:
        if self.card_id is not None:  # an original: MLPerf's subject, under TI's arithmetic
            return ti_original_subject(SubjectSource(self.path, self.card_id, self.standin, self.position).build())
        if not Path(self.path).is_dir():
            raise SubjectError(f"{self.path} is not readable on this machine",
                               hint="every node must see the models and the dataset at the same paths "
                                    "(a shared file system)")
        return ti_bundle_subjects(Path(self.path), allow_edited=self.allow_edited)[self.position]


@dataclass
class TiSubject(Subject):
    """A bundle under TI's semantics: predict() returns TI's formatted detection rows (or the top-1 record)."""

    semantics: str = "ti"
    post: Any = None  # TiDetectionPost (detection)
    label_offset: Any = 0  # metric.label_offset_pred

    def predict(self, tensor: np.ndarray, qsl_idx: int = 0) -> np.ndarray:
        out = self.infer(tensor[None])
        if self.task is Task.CLASSIFICATION:
            return np.asarray(out, dtype=np.float32).reshape(1)
        return self.post.format(out)

    def score(self, dataset: Any, records: Sequence[tuple[int, np.ndarray]], detections_json: Path | None) -> float:
        if self.task is Task.CLASSIFICATION:
            return float(metrics.imagenet_top1(records, dataset)[0])
        return ti_scoring.coco_map_percent(records, dataset, self.post, self.label_offset, detections_json)


def ti_bundle_subjects(folder: Path, *, allow_edited: bool = False) -> list[Subject]:
    """The bundle's artifact (and its meta_arch.prototxt decoding, when it has one) under TI's semantics; the
    bundle read and checked by bundle.reader (model_path confined, files against the manifest, fields bounded)."""
    folder = Path(folder)
    bundle = read_bundle(bundle_folder(folder), allow_edited=allow_edited)
    config = bundle.config
    card = bundle.card()
    where = str(folder / "config.yaml")
    model_path = bundle.model
    runtime = {".onnx": Runtime.ONNX_RUNTIME, ".tflite": Runtime.LITERT}.get(model_path.suffix.lower())
    if not model_path.is_file() or runtime is None:
        raise SubjectError(f"{folder}: config.yaml names model {model_path.name!r}, which is not a .tflite or .onnx "
                           "model in the bundle")
    pre = TiPreprocess.from_config(config, where)
    offset = bundle.label_offset if bundle.label_offset is not None else (
        0 if card.task is Task.DETECTION else card.labels.offset)
    post = TiDetectionPost.from_config(config, where) if card.task is Task.DETECTION else None
    if card.task is Task.CLASSIFICATION and not (isinstance(offset, int) and not isinstance(offset, bool)):
        raise SubjectError(f"{where}: metric.label_offset_pred must be an int for classification, got {offset!r}")
    standin = bundle.standin or is_standin(model_path)

    def subject(what: str, slug: str, run: Runtime, infer: Callable, position: int) -> TiSubject:
        source = TiSubjectSource(str(folder.resolve()), position=position, allow_edited=allow_edited)
        return TiSubject(what + TI_SUFFIX, slug + "-ti", card, run, model_path, standin, _feed(pre, model_path),
                         infer, source=source, post=post, label_offset=offset)

    raw, input_info = _raw_outputs(model_path)
    if card.task is Task.CLASSIFICATION:
        return [subject(str(folder), folder.name, runtime, _top1(raw, offset), 0)]
    subjects = [subject(str(folder), folder.name, runtime, raw, 0)]
    prototxt = bundle.file(META_ARCH)
    if prototxt is not None and runtime is Runtime.ONNX_RUNTIME:
        subjects.append(subject(f"{folder} + meta_arch.prototxt", f"{folder.name}-meta-arch", Runtime.META_ARCH,
                                _meta_arch_outputs(model_path, prototxt, config), 1))
    return subjects


def _feed(pre: Any, model_path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """TI's preprocessing; a model whose input is not what TI feeds is refused (TI's run would fail on it)."""
    if pre.dtype != "float32":
        raise SubjectError(f"{model_path.parent}/config.yaml: no session.input_mean / input_scale, so TI feeds "
                           "uint8 pixels, which edgezoo's TI semantics does not reproduce")
    return pre.apply


def _raw_outputs(model_path: Path) -> tuple[Callable[[np.ndarray], list[np.ndarray]], Any]:
    """batch -> every output of the model, in the model's output order (what TI's session returns)."""
    if model_path.suffix.lower() == ".tflite" and ssd_surgery.read_postprocess_ops(model_path):
        # One thread: LiteRT's multi-threaded regular NMS can skip a class (see graphs/ssd_surgery).
        interp = tflite_model.load_interpreter(model_path, num_threads=1)
        indices = [d["index"] for d in interp.get_output_details()]
        detail = interp.get_input_details()[0]

        def run_tflite(batch: np.ndarray) -> list[np.ndarray]:
            interp.set_tensor(detail["index"], batch.astype(detail["dtype"], copy=False))
            interp.invoke()
            return [np.array(interp.get_tensor(i)) for i in indices]

        return run_tflite, tflite_model.inputs(interp)[0]
    runner = load_runner(model_path)
    names = [o.name for o in runner.outputs]
    feed = runner.inputs[0].name

    def run(batch: np.ndarray) -> list[np.ndarray]:
        out = runner.run({feed: batch}, names)
        return [np.asarray(out[n]) for n in names]

    return run, runner.inputs[0]


def _top1(raw: Callable[[np.ndarray], list[np.ndarray]], offset: int) -> Callable[[np.ndarray], np.ndarray]:
    """TI's classification post-processing: the first output's argmax over its last axis, plus the label offset."""
    def infer(batch: np.ndarray) -> np.ndarray:
        first = raw(batch)[0][0]
        index = first.argmax(axis=-1) if first.shape[-1] > 1 else first
        return np.array([int(np.asarray(index).reshape(-1)[0]) + offset], np.float32)

    return infer


def _meta_arch_outputs(onnx_path: Path, prototxt: Path, config: dict[str, Any]) -> Callable[[np.ndarray], list]:
    """The heads in ONNX Runtime, the prototxt's decoding in numpy, the detections laid out as the graph's outputs
    (positions from postprocess.shuffle_indices, box order from its formatter, dtypes from the graph)."""
    ssd = load_meta_arch(prototxt).single_ssd(prototxt.name)
    check_meta_arch(load_meta_arch(prototxt), onnx_model.load(onnx_path), where=prototxt.name)
    executor = MetaArchExecutor(ssd, where=prototxt.name)
    heads = list(dict.fromkeys([*ssd.box_input, *ssd.class_input]))
    runner = load_runner(onnx_path, outputs=heads)
    graph_outputs = [(o.name, o.dtype) for o in load_runner(onnx_path).outputs]
    post = TiDetectionPost.from_config(config, str(prototxt.with_name("config.yaml")))
    order = list(post.shuffle_indices or (0, 1, 2))
    yxyx = post.permutation is not None and post.permutation[1][:2] == (1, 0)
    feed = runner.inputs[0].name
    if len(graph_outputs) < 3:
        raise EdgezooError(f"{onnx_path}: {len(graph_outputs)} outputs; TI's detection post-processing needs boxes, "
                           "labels and scores")

    def infer(batch: np.ndarray) -> list[np.ndarray]:
        out = runner.run({feed: batch}, heads)
        raw = executor([out[t] for t in ssd.box_input], [out[t] for t in ssd.class_input])
        count = len(raw.scores)
        boxes = raw.boxes_xyxy[:, [1, 0, 3, 2]] if yxyx else raw.boxes_xyxy
        values = {order[0]: boxes.reshape(1, count, 4), order[1]: raw.labels.reshape(1, count),
                  order[2]: raw.scores.reshape(1, count)}
        return [np.asarray(values.get(i, np.array([count])), dtype=_numpy_dtype(dtype))
                for i, (_name, dtype) in enumerate(graph_outputs)]

    return infer


def _numpy_dtype(name: str) -> Any:
    try:
        return np.dtype(name)
    except TypeError:
        return np.float32


@dataclass
class TiOriginalSubject(TiSubject):
    """A card's original fed as TI's pipeline would feed it (the card's config.yaml preprocessing with TI's
    arithmetic; a uint8 input gets TI's pixels) and scored with TI's box clipping, threshold and scoring. Its
    records are MLPerf's (the original's own label convention), turned into TI's rows when scored, so a bundle's TI
    figure can be compared with its original under the same arithmetic: the difference is the conversion's own."""

    category_map: Any = 0  # the original's labels -> COCO ids (0: they are COCO ids; a list: MLPerf's inverse map)

    def predict(self, tensor: np.ndarray, qsl_idx: int = 0) -> np.ndarray:
        return Subject.predict(self, tensor, qsl_idx)

    def score(self, dataset: Any, records: Sequence[tuple[int, np.ndarray]], detections_json: Path | None) -> float:
        if self.task is Task.CLASSIFICATION:
            return float(metrics.imagenet_top1(records, dataset)[0])
        rows = []
        for qsl_idx, data in records:
            dets = np.asarray(data, np.float32).reshape(-1, metrics.DETECTION_FIELDS)
            # [qsl, ymin, xmin, ymax, xmax, score, label] -> TI's [x1, y1, x2, y2, label, score]
            rows.append((qsl_idx, dets[:, [2, 1, 4, 3, 6, 5]]))
        return ti_scoring.coco_map_percent(rows, dataset, self.post, self.category_map, detections_json)


def ti_original_subject(original: Subject) -> Subject:
    """`original` (an MLPerf original subject) under TI's arithmetic, from the config.yaml its card gives a bundle."""
    card = original.card
    config = card_config(card, Target.ONNX if Target.ONNX in card.recipes else next(iter(card.recipes)))
    pre = TiPreprocess.from_config(config, f"{card.id}'s config")
    spec = card.preprocess
    uint8 = spec.dtype == "uint8"

    def preprocess(image_bgr: np.ndarray) -> np.ndarray:
        if uint8:  # the graph normalises in itself: TI's pixels, in the original's layout
            pixels = pre.pixels(image_bgr)
            return np.ascontiguousarray(pixels.transpose(2, 0, 1)) if spec.layout == "NCHW" else pixels
        out = pre.apply(image_bgr)
        if (pre.layout == "NCHW") != (spec.layout == "NCHW"):
            out = np.ascontiguousarray(out.transpose(1, 2, 0) if pre.layout == "NCHW" else out.transpose(2, 0, 1))
        return out

    post = None
    if card.task is Task.DETECTION:
        threshold = score_threshold(card)
        config["postprocess"] = {"detection_threshold": TI_SETTINGS_DETECTION_THRESHOLD if threshold is None
                                 else threshold}
        post = TiDetectionPost.from_config(config)
    base = original.source
    source = None if base is None else TiSubjectSource(base.path, base.card_id, base.standin, base.position)
    return TiOriginalSubject(original.what + TI_SUFFIX, original.slug + "-ti", card, original.runtime,
                             original.model_path, original.standin, preprocess, original.infer,
                             use_inv_map=original.use_inv_map, source=source, post=post,
                             category_map=[0, *_coco_ids()] if original.use_inv_map else 0)


def ti_variants(subjects: Sequence[Subject], semantics: Semantics) -> list[Subject]:
    """Original subjects as `semantics` asks: MLPerf's, TI's, or both (MLPerf's first)."""
    mlperf = list(subjects) if semantics is not Semantics.TI else []
    return mlperf + ([ti_original_subject(s) for s in subjects] if semantics is not Semantics.MLPERF else [])


def _coco_ids() -> list[int]:

    return [cat_id for cat_id, _name in COCO_CATEGORIES]
