"""What `edgezoo eval` evaluates: a card's original model or a bundle, as `preprocess` + `predict` halves.

The two halves are separate so that the engine can decode and preprocess images on a pool while the runtime runs
(`preprocess(image_bgr) -> one input`, no batch dimension; `predict(input, qsl_idx) -> record`). A record is what
MLPerf's reference app puts in mlperf_log_accuracy.json for one sample:

- classification: [label] as float32, the label in the accuracy script's convention (index + the card's offset:
  -1 for the 1001-class TF models, as MLPerf's harness applies it);
- detection: N x 7 float32 [qsl_idx, ymin, xmin, ymax, xmax, score, label], boxes normalised, labels as MLPerf's
  post-processing for that model emits them (SSD-MobileNet: COCO ids; ResNet34-SSD: 1..80, scored with the inverse
  map), with MLPerf's score threshold for the model.

Subjects:
- `original_subjects(card, ...)`: the published file (or its stand-in) through its own runtime (TF for a frozen
  graph, ONNX Runtime for ONNX), preprocessed with MLPerf's pipeline for the model;
- `bundle_subjects(folder)`: an exported bundle, preprocessed as its config.yaml states, through LiteRT or ONNX
  Runtime. An ONNX bundle with a meta_arch.prototxt gives a second subject: the heads decoded by the prototxt's
  semantics (edgezoo's numpy executor of TIDL's caffe_ssd), since TIDL runs that and not the ONNX tail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo import fetch, zoo
from edgezoo.bundle.outputs import safe_name
from edgezoo.bundle.provenance import is_standin
from edgezoo.bundle.reader import CONFIG, META_ARCH, Bundle, check_input_size, read_bundle
from edgezoo.core.errors import ConfigError, EdgezooError
from edgezoo.graphs import onnx_model, tflite_model
from edgezoo.graphs.runners import load_runner
from edgezoo.preprocessing.mlperf import mlperf_preprocess
from edgezoo.ssd import ssd_surgery
from edgezoo.standins import StandinVariant
from edgezoo.tidl.meta_arch.execute import MetaArchExecutor
from edgezoo.tidl.meta_arch.prototxt import load_meta_arch
from edgezoo.tidl.meta_arch.validate import check_meta_arch
from edgezoo.verify.detectors import find_outputs
from edgezoo.zoo.schema import ModelCard, ModelFormat, Task

__all__ = ["Subject", "SubjectSource", "SubjectError", "Runtime", "original_subjects", "bundle_subjects",
           "score_threshold"]


def score_threshold(card: ModelCard) -> float | None:
    """The score threshold of MLPerf's post-processing for the model (its card's mlperf section; None: none)."""
    return card.mlperf.score_threshold if card.mlperf else None


class SubjectError(EdgezooError):
    """Something to evaluate cannot be: not a bundle, no config.yaml, an unknown model in it."""


class Runtime(str, Enum):
    TENSORFLOW = "TensorFlow"
    ONNX_RUNTIME = "ONNX Runtime"
    LITERT = "LiteRT"
    META_ARCH = "ONNX Runtime + caffe_ssd"  # heads in ORT, the prototxt's decoding + NMS in numpy


_RUNTIMES = {ModelFormat.TF: Runtime.TENSORFLOW, ModelFormat.ONNX: Runtime.ONNX_RUNTIME,
             ModelFormat.TFLITE: Runtime.LITERT}


@dataclass(frozen=True)
class SubjectSource:
    """How to build a subject again in another process (a Ray actor): a subject's runtime (a TF session, a LiteRT
    interpreter) cannot be pickled, this can. The path must be readable where it is built (a shared file system)."""

    path: str  # an original's model file, or a bundle folder
    card_id: str | None = None  # set for an original
    standin: bool = False
    position: int = 0  # which of bundle_subjects(path)
    allow_edited: bool = False  # --allow-edited-bundle
    model: str | None = None  # a model evaluated in the bundle's clothes (bundle_subjects' `model`)

    def build(self) -> Subject:
        if not Path(self.path).exists():
            raise SubjectError(f"{self.path} is not readable on this machine ({os.uname().nodename})",
                               hint="every node must see the models and the dataset at the same paths "
                                    "(a shared file system)")
        if self.card_id is None:
            return bundle_subjects(Path(self.path), allow_edited=self.allow_edited,
                                   model=Path(self.model) if self.model else None)[self.position]
        return _original_subject(zoo.get_card(self.card_id), Path(self.path), self.standin)


@dataclass
class Subject:
    """One evaluated thing. `what` is what the table shows; `slug` names its folder under the output folder."""

    what: str
    slug: str
    card: ModelCard
    runtime: Runtime
    model_path: Path
    standin: bool
    preprocess: Callable[[np.ndarray], np.ndarray]
    infer: Callable[[np.ndarray], np.ndarray]  # batch of one -> classification [label] | detection [n, 6]
    use_inv_map: bool = False  # detection labels are 1..80 and scored through MLPerf's inverse map
    source: SubjectSource | None = None  # how another process (a Ray actor) builds this subject again

    @property
    def task(self) -> Task:
        return self.card.task

    def predict(self, tensor: np.ndarray, qsl_idx: int = 0) -> np.ndarray:
        """One preprocessed input -> its accuracy-log record (float32; detection: [n, 7] with qsl_idx first)."""
        out = self.infer(tensor[None])
        if self.task is Task.CLASSIFICATION:
            return np.asarray(out, dtype=np.float32).reshape(1)
        dets = np.asarray(out, dtype=np.float32).reshape(-1, 6)
        return np.concatenate([np.full((len(dets), 1), qsl_idx, np.float32), dets], axis=1)


# ----------------------------------------------------------------------------------------------------------------
# outputs -> records


def _classification_infer(runner: Any, output: str, offset: int, argmax: bool) -> Callable[[np.ndarray], np.ndarray]:
    feed_name = runner.inputs[0].name

    def infer(batch: np.ndarray) -> np.ndarray:
        value = np.asarray(runner.run({feed_name: batch}, [output])[output])
        index = int(value.reshape(-1)[0]) if argmax else int(np.argmax(value.reshape(-1)))
        return np.array([index + offset], np.float32)

    return infer


def _records(boxes_yxyx: np.ndarray, scores: np.ndarray, labels: np.ndarray, threshold: float | None) -> np.ndarray:
    """[n, 6] (ymin, xmin, ymax, xmax, score, label), dropping scores below MLPerf's threshold for the model."""
    rows = np.concatenate([np.asarray(boxes_yxyx, np.float64).reshape(-1, 4),
                           np.asarray(scores, np.float64).reshape(-1, 1),
                           np.asarray(labels, np.float64).reshape(-1, 1)], axis=1)
    if threshold is not None:
        rows = rows[rows[:, 4] >= threshold]
    return rows.astype(np.float32)


def _outputs_infer(runner: Any, path: Path, card: ModelCard, threshold: float | None) -> Callable:
    """A model with detection outputs (OD API's four or MLPerf ResNet34's three), decoded by the verify adapters."""
    names = find_outputs(path, [o.name for o in runner.outputs], card)
    feed_name = runner.inputs[0].name
    fetch = names.names()

    def infer(batch: np.ndarray) -> np.ndarray:
        d = names.decode(runner.run({feed_name: batch}, fetch))
        return _records(d.boxes, d.scores, d.classes, threshold)

    return infer


def _postprocess_tflite_infer(path: Path, threshold: float | None) -> tuple[Callable, Any]:
    """A .tflite ending in TFLite_Detection_PostProcess: classes 0-based among the foreground -> dataset ids."""
    (op,) = ssd_surgery.read_postprocess_ops(path)
    boxes, classes, scores, count = op["outputs"]
    # One thread: LiteRT 2.3's multi-threaded regular NMS skips a class (see ssd/ssd_surgery).
    interp = tflite_model.load_interpreter(path, num_threads=1)
    details = {d["name"]: d for d in interp.get_tensor_details()}
    index = {name: d["index"] for name, d in details.items()}
    logits_cols = int(details[op["inputs"][1]]["shape"][-1])
    # With a background column the class index i is dataset id i + 1 (COCO ids in the 91-class label space).
    offset = 1 if logits_cols == int(op["attributes"].get("num_classes", 0)) + 1 else 0
    per_detection = 1 if op["attributes"].get("use_regular_nms") else int(
        op["attributes"].get("max_classes_per_detection", 1))
    input_detail = interp.get_input_details()[0]

    def infer(batch: np.ndarray) -> np.ndarray:
        interp.set_tensor(input_detail["index"], batch.astype(input_detail["dtype"], copy=False))
        interp.invoke()
        n = int(np.asarray(interp.get_tensor(index[count])).reshape(-1)[0]) * per_detection
        return _records(interp.get_tensor(index[boxes]).reshape(-1, 4)[:n],
                        interp.get_tensor(index[scores]).reshape(-1)[:n],
                        np.round(interp.get_tensor(index[classes]).reshape(-1)[:n]) + offset, threshold)

    return infer, tflite_model.inputs(interp)[0]


def _meta_arch_infer(onnx_path: Path, prototxt: Path, threshold: float | None) -> tuple[Callable, Any]:
    """The ONNX heads in ONNX Runtime, then the prototxt's decoding + NMS (what TIDL runs)."""
    ssd = load_meta_arch(prototxt).single_ssd(prototxt.name)
    check_meta_arch(load_meta_arch(prototxt), onnx_model.load(onnx_path), where=prototxt.name)
    executor = MetaArchExecutor(ssd, where=prototxt.name)
    heads = list(dict.fromkeys([*ssd.box_input, *ssd.class_input]))
    runner = load_runner(onnx_path, outputs=heads)
    feed_name = runner.inputs[0].name

    def infer(batch: np.ndarray) -> np.ndarray:
        out = runner.run({feed_name: batch}, heads)
        raw = executor([out[t] for t in ssd.box_input], [out[t] for t in ssd.class_input])
        return _records(raw.boxes_xyxy[:, [1, 0, 3, 2]], raw.scores, raw.labels, threshold)

    return infer, runner.inputs[0]


# ----------------------------------------------------------------------------------------------------------------
# originals


def _original_file(card: ModelCard, *, standin: bool, variant: Any, mirror: str | None, offline: bool) -> Path:
    """The card's original model: the frozen graph when it has one (MLPerf's TF path), else the ONNX."""
    fmt = ModelFormat.TF if ModelFormat.TF in card.formats else ModelFormat.ONNX
    spec = card.formats[fmt]
    kwargs = dict(mirror=mirror, offline=offline, standin=standin, variant=variant)
    if spec.member:
        return fetch.fetch_member(card, spec.file, spec.member, **kwargs)
    return fetch.fetch_file(card, spec.file, **kwargs)


def _classification_output(card: ModelCard, path: Path) -> tuple[str, bool]:
    """(output name, is argmax): the argmax when the graph has one (MLPerf's harness reads ArgMax:0 for ResNet50),
    else the probabilities or logits."""
    fmt = ModelFormat.of(path)
    outputs = card.formats[fmt].outputs
    for role in ("argmax", "probabilities", "logits"):
        found = next((o for o in outputs if o.role == role), None)
        if found is not None:
            return found.name, role == "argmax"
    return outputs[0].name, False


def original_subjects(card: ModelCard, *, standin: bool = False, variant: Any = "full", mirror: str | None = None,
                      offline: bool = False) -> list[Subject]:
    """The card's original model, ready to evaluate (fetched or built as a stand-in)."""
    path = _original_file(card, standin=standin, variant=StandinVariant(variant), mirror=mirror, offline=offline)
    return [_original_subject(card, path, standin)]


def _original_subject(card: ModelCard, path: Path, standin: bool) -> Subject:
    threshold = score_threshold(card)

    def preprocess(image_bgr: np.ndarray) -> np.ndarray:
        return mlperf_preprocess(image_bgr, card.id)

    if card.task is Task.CLASSIFICATION:
        output, argmax = _classification_output(card, path)
        runner = load_runner(path, outputs=[output])
        infer = _classification_infer(runner, runner.outputs[0].name, card.labels.offset, argmax)
    else:
        # A frozen graph's sink nodes need not be its outputs: ask for the card's output tensors by name.
        from_tf = ModelFormat.of(path) is ModelFormat.TF
        names = [o.name for o in card.formats[ModelFormat.TF].outputs] if from_tf else None
        runner = load_runner(path, outputs=names)
        infer = _outputs_infer(runner, path, card, threshold)
    label = f"{card.id} (original{', stand-in' if standin else ''})"
    return Subject(label, "original", card, _RUNTIMES[ModelFormat.of(path)], path, standin, preprocess, infer,
                   use_inv_map=card.labels.map == "coco80to90",
                   source=SubjectSource(str(Path(path).resolve()), card_id=card.id, standin=standin))


# ----------------------------------------------------------------------------------------------------------------
# bundles


def read_bundle_config(folder: Path, *, allow_edited: bool = False) -> dict[str, Any]:
    """config.yaml of a bundle, read and checked by bundle.reader."""
    return read_bundle(bundle_folder(folder), allow_edited=allow_edited).config


def bundle_card(folder: Path, *, allow_edited: bool = False) -> ModelCard:
    """The zoo card of a bundle (its config.yaml's session.model_id), the bundle read and checked by bundle.reader."""
    return read_bundle(bundle_folder(folder), allow_edited=allow_edited).card()


def bundle_folder(folder: Path) -> Path:
    """`folder`, when it is a folder (else SubjectError: neither a model id nor a bundle)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubjectError(f"{folder}: not a model id nor a bundle folder",
                           hint="give a model id (edgezoo list) or a folder written by 'edgezoo export'")
    return folder


def _bundle_preprocess(bundle: Bundle, input_info: Any) -> Callable[[np.ndarray], np.ndarray]:
    """config.yaml's preprocessing, producing the dtype the model's input takes (sizes checked against it)."""
    check_input_size(bundle, input_info.shape)
    pre = bundle.preprocess
    dtype = "uint8" if input_info.dtype == "uint8" else "float32"
    return lambda image_bgr: pre.apply(image_bgr, dtype=dtype)


def _classifier_offset(bundle: Bundle, card: ModelCard) -> int:
    offset = bundle.label_offset
    if offset is None:
        return card.labels.offset
    if not isinstance(offset, int):
        raise ConfigError(f"{bundle.folder / CONFIG}: metric.label_offset_pred must be one int for a "
                          f"classifier, got a {type(offset).__name__}", hint="export the bundle again")
    return offset


def bundle_subjects(folder: Any, *, allow_edited: bool = False, model: Path | None = None,
                    shown: Path | None = None) -> list[Subject]:
    """A bundle's artifact (and, for an ONNX SSD with a meta_arch.prototxt, the prototxt's decoding too).

    `folder`: a bundle folder or a `bundle.reader.Bundle` already read; `model`: another model file evaluated in
    the bundle's clothes (quantize's previews and probes)."""
    if isinstance(folder, Bundle):
        bundle, shown = folder, shown or folder.folder
    else:
        shown = bundle_folder(folder)
        bundle = read_bundle(shown, allow_edited=allow_edited, model=model)
    card = bundle.card()
    model_path = bundle.model
    runtime = _RUNTIMES.get(ModelFormat.of(model_path))
    if runtime is None or runtime is Runtime.TENSORFLOW:
        raise SubjectError(f"{model_path}: not a .tflite or .onnx model")
    standin = bundle.standin or is_standin(model_path)
    threshold = score_threshold(card)
    inv_map = card.labels.map == "coco80to90"
    name, slug = str(shown), safe_name(bundle.folder.name, bundle.folder)

    def subject(what: str, kind: str, run: Runtime, infer: Callable, input_info: Any) -> Subject:
        source = SubjectSource(str(bundle.folder), position=len(subjects), allow_edited=bundle.allow_edited,
                               model=str(bundle.model_override) if bundle.model_override else None)
        return Subject(what, kind, card, run, model_path, standin, _bundle_preprocess(bundle, input_info),
                       infer, inv_map, source)

    subjects: list[Subject] = []
    if card.task is Task.CLASSIFICATION:
        runner = load_runner(model_path)
        infer = _classification_infer(runner, runner.outputs[0].name, _classifier_offset(bundle, card),
                                      argmax=False)
        return [subject(name, slug, runtime, infer, runner.inputs[0])]
    prototxt = bundle.file(META_ARCH)
    if runtime is Runtime.LITERT:
        if ssd_surgery.read_postprocess_ops(model_path):
            infer, info = _postprocess_tflite_infer(model_path, threshold)
        else:
            runner = load_runner(model_path)
            infer, info = _outputs_infer(runner, model_path, card, threshold), runner.inputs[0]
        subjects.append(subject(name, slug, runtime, infer, info))
    else:
        runner = load_runner(model_path)
        try:
            subjects.append(subject(name, slug, runtime, _outputs_infer(runner, model_path, card, threshold),
                                    runner.inputs[0]))
        except EdgezooError:
            if prototxt is None:
                raise  # cut at the heads and no prototxt: nothing decodes it
    if prototxt is not None:
        infer, info = _meta_arch_infer(model_path, prototxt, threshold)
        subjects.append(subject(f"{name} + meta_arch.prototxt", f"{slug}-meta-arch", Runtime.META_ARCH, infer, info))
    return subjects
