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
  semantics (edgezoo's numpy executor of TIDL's caffe_ssd), since TIDL runs that and not the ONNX tail. Both share
  one model pass (`forward`): the heads and the tail come out of one inference, decoded both ways.

`predict` = `decode(forward(batch))`: the runtime pass and the reading of its outputs (verify.detectors, the one
adapter that reads detections). Subjects with the same `forward` are evaluated in one loop (`predict_shared`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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
from edgezoo.graphs.runners import load_runner
from edgezoo.preprocessing.mlperf import mlperf_preprocess
from edgezoo.ssd import ssd_surgery
from edgezoo.standins import StandinVariant
from edgezoo.verify import detectors
from edgezoo.zoo.schema import ModelCard, ModelFormat, Task

__all__ = ["Subject", "SubjectSource", "SubjectError", "Runtime", "ModelPass", "original_subjects", "bundle_subjects",
           "build_subjects", "predict_shared", "shared_groups", "score_threshold"]


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

    def build(self, threads: int | None = None) -> Subject:
        return build_subjects([self], threads=threads)[0]


def build_subjects(sources: Sequence[SubjectSource], *, threads: int | None = None) -> list[Subject]:
    """The subjects of `sources` built in this process; those of one bundle share its model pass, as
    bundle_subjects made them (an ONNX SSD's tail and prototxt decoding: one inference for both)."""
    bundles: dict[str, list[Subject]] = {}
    built = []
    for source in sources:
        if type(source) is not SubjectSource:  # a layer over subjects (TI's semantics) builds its own
            built.append(source.build())
            continue
        if not Path(source.path).exists():
            raise SubjectError(f"{source.path} is not readable on this machine ({os.uname().nodename})",
                               hint="every node must see the models and the dataset at the same paths "
                                    "(a shared file system)")
        if source.card_id is None:
            key = (source.path, source.allow_edited, source.model)
            if key not in bundles:
                bundles[key] = bundle_subjects(Path(source.path), allow_edited=source.allow_edited,
                                               model=Path(source.model) if source.model else None, threads=threads)
            built.append(bundles[key][source.position])
        else:
            built.append(_original_subject(zoo.get_card(source.card_id), Path(source.path), source.standin,
                                           threads))
    return built


def _as_is(outputs: Any) -> Any:
    return outputs


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
    forward: Callable[[np.ndarray], Any]  # the runtime (a ModelPass): batch of one -> outputs; one object for the
    # subjects decoding one pass
    decode: Callable[[Any], np.ndarray] = _as_is  # outputs -> classification [label] | detection [n, 6]
    use_inv_map: bool = False  # detection labels are 1..80 and scored through MLPerf's inverse map
    source: SubjectSource | None = None  # how another process (a Ray actor) builds this subject again

    @property
    def task(self) -> Task:
        return self.card.task

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.decode(self.forward(batch))

    def predict(self, tensor: np.ndarray, qsl_idx: int = 0) -> np.ndarray:
        """One preprocessed input -> its accuracy-log record (float32; detection: [n, 7] with qsl_idx first)."""
        return self.finish(self.forward(tensor[None]), qsl_idx)

    def finish(self, outputs: Any, qsl_idx: int) -> np.ndarray:
        """The record from the model pass's outputs (what predict does after the inference)."""
        return self.record(self.decode(outputs), qsl_idx)

    def record(self, decoded: np.ndarray, qsl_idx: int) -> np.ndarray:
        if self.task is Task.CLASSIFICATION:
            return np.asarray(decoded, dtype=np.float32).reshape(1)
        dets = np.asarray(decoded, dtype=np.float32).reshape(-1, 6)
        return np.concatenate([np.full((len(dets), 1), qsl_idx, np.float32), dets], axis=1)

    def close(self) -> None:
        """Release the runtime (shared with the other subjects of the same pass: close them together)."""
        close = getattr(self.forward, "close", None)
        if callable(close):
            close()


class ModelPass:
    """One inference of a one-input model: batch -> {output: value} for everything its subjects decode."""

    def __init__(self, runner: Any, fetch: Sequence[str]) -> None:
        self.runner = runner
        self.input = runner.inputs[0]
        self.fetch = list(dict.fromkeys(fetch))

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self.runner.run({self.input.name: batch}, self.fetch)

    def close(self) -> None:
        self.runner.close()


def predict_shared(subjects: Sequence[Subject], tensor: np.ndarray, qsl_idx: int) -> list[np.ndarray]:
    """Each subject's record for one input, every distinct model pass run once (subjects of one pass decode the
    same outputs: the records are those of subject.predict, one inference fewer per extra subject)."""
    users: dict[int, int] = {}
    for subject in subjects:
        users[id(subject.forward)] = users.get(id(subject.forward), 0) + 1
    outputs: dict[int, Any] = {}
    records = []
    for subject in subjects:
        key = id(subject.forward)
        if users[key] == 1:  # its own pass: predict as it defines it
            records.append(subject.predict(tensor, qsl_idx))
            continue
        if key not in outputs:
            outputs[key] = subject.forward(tensor[None])
        records.append(subject.finish(outputs[key], qsl_idx))
    return records


def shared_groups(subjects: Sequence[Subject]) -> list[list[int]]:
    """Positions of `subjects` grouped by model pass and preprocessing, in first-seen order: each group is
    evaluated in one loop over the images (one decode + preprocess + inference per image)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, subject in enumerate(subjects):
        groups.setdefault((id(subject.forward), id(subject.preprocess)), []).append(i)
    return list(groups.values())


# ----------------------------------------------------------------------------------------------------------------
# outputs -> records


def _classification_decode(output: str, offset: int, argmax: bool) -> Callable[[dict], np.ndarray]:
    def decode(out: dict[str, np.ndarray]) -> np.ndarray:
        value = np.asarray(out[output])
        index = int(value.reshape(-1)[0]) if argmax else int(np.argmax(value.reshape(-1)))
        return np.array([index + offset], np.float32)

    return decode


def _records(boxes_yxyx: np.ndarray, scores: np.ndarray, labels: np.ndarray, threshold: float | None) -> np.ndarray:
    """[n, 6] (ymin, xmin, ymax, xmax, score, label), dropping scores below MLPerf's threshold for the model."""
    rows = np.concatenate([np.asarray(boxes_yxyx, np.float64).reshape(-1, 4),
                           np.asarray(scores, np.float64).reshape(-1, 1),
                           np.asarray(labels, np.float64).reshape(-1, 1)], axis=1)
    if threshold is not None:
        rows = rows[rows[:, 4] >= threshold]
    return rows.astype(np.float32)


def _detection_decode(decoder: Any, threshold: float | None) -> Callable[[dict], np.ndarray]:
    """A verify.detectors decoder (the one adapter reading detections) -> MLPerf's rows."""
    def decode(out: dict[str, np.ndarray]) -> np.ndarray:
        d = decoder.decode(out)
        return _records(d.boxes, d.scores, d.classes, threshold)

    return decode


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
                      offline: bool = False, threads: int | None = None) -> list[Subject]:
    """The card's original model, ready to evaluate (fetched or built as a stand-in). `threads`: the runtime's
    (default: the CPUs this process may use)."""
    path = _original_file(card, standin=standin, variant=StandinVariant(variant), mirror=mirror, offline=offline)
    return [_original_subject(card, path, standin, threads)]


def _original_subject(card: ModelCard, path: Path, standin: bool, threads: int | None = None) -> Subject:
    def preprocess(image_bgr: np.ndarray) -> np.ndarray:
        return mlperf_preprocess(image_bgr, card.id)

    if card.task is Task.CLASSIFICATION:
        output, argmax = _classification_output(card, path)
        runner = load_runner(path, outputs=[output], threads=threads)
        output = runner.outputs[0].name
        forward, decode = ModelPass(runner, [output]), _classification_decode(output, card.labels.offset, argmax)
    else:
        runner = detectors.outputs_runner(path, card, threads=threads)
        decoder = detectors.outputs_decoder(runner, card)
        forward = ModelPass(runner, decoder.fetch)
        decode = _detection_decode(decoder, score_threshold(card))
    label = f"{card.id} (original{', stand-in' if standin else ''})"
    return Subject(label, "original", card, _RUNTIMES[ModelFormat.of(path)], path, standin, preprocess, forward,
                   decode, use_inv_map=card.labels.map == "coco80to90",
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
                    shown: Path | None = None, threads: int | None = None) -> list[Subject]:
    """A bundle's artifact (and, for an ONNX SSD with a meta_arch.prototxt, the prototxt's decoding too, on the same
    model pass: one inference, decoded both ways).

    `folder`: a bundle folder or a `bundle.reader.Bundle` already read; `model`: another model file evaluated in
    the bundle's clothes (quantize's previews and probes); `threads`: the runtime's (default: the CPUs this process
    may use; a model ending in TFLite_Detection_PostProcess always runs on one, see verify.detectors)."""
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
    name, slug = str(shown), safe_name(bundle.folder.name, bundle.folder)

    def subjects_of(runner: Any, decoded: list[tuple[str, str, Runtime, list[str], Callable]]) -> list[Subject]:
        """One model pass (and one preprocessing) for every decoding of this runner's outputs."""
        forward = ModelPass(runner, [n for *_, names, _ in decoded for n in names])
        preprocess = _bundle_preprocess(bundle, runner.inputs[0])
        model = str(bundle.model_override) if bundle.model_override else None
        return [Subject(what, kind, card, run, model_path, standin, preprocess, forward, decode,
                        card.labels.map == "coco80to90",
                        SubjectSource(str(bundle.folder), position=i, allow_edited=bundle.allow_edited, model=model))
                for i, (what, kind, run, _, decode) in enumerate(decoded)]

    if card.task is Task.CLASSIFICATION:
        runner = load_runner(model_path, threads=threads)
        offset = _classifier_offset(bundle, card)
        output = runner.outputs[0].name
        return subjects_of(runner, [(name, slug, runtime, [output], _classification_decode(output, offset, False))])
    prototxt = bundle.file(META_ARCH)
    if runtime is Runtime.LITERT:
        if ssd_surgery.read_postprocess_ops(model_path):
            runner = detectors.postprocess_runner(model_path)
            decoder = detectors.postprocess_decoder(runner)
        else:
            runner = load_runner(model_path, threads=threads)
            decoder = detectors.outputs_decoder(runner, card)
        return subjects_of(runner, [(name, slug, runtime, decoder.fetch, _detection_decode(decoder, threshold))])
    runner = load_runner(model_path, threads=threads)
    decoded = []
    try:
        decoder = detectors.outputs_decoder(runner, card)
        decoded.append((name, slug, runtime, decoder.fetch, _detection_decode(decoder, threshold)))
    except EdgezooError:
        if prototxt is None:
            raise  # cut at the heads and no prototxt: nothing decodes it
    if prototxt is not None:
        meta = detectors.meta_arch_decoder(model_path, prototxt)
        decoded.append((f"{name} + meta_arch.prototxt", f"{slug}-meta-arch", Runtime.META_ARCH, meta.fetch,
                        _detection_decode(meta, threshold)))
    return subjects_of(runner, decoded)
