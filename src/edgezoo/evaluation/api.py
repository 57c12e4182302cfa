"""`evaluate(subjects, dataset, out)`: accuracy of originals and artifacts side by side, with MLPerf's files.

For each subject, OUT/<model>/<what>/ receives `mlperf_log_accuracy.json` (LoadGen's format), the COCO detections
JSON for detectors (`coco-results.json`, as MLPerf's accuracy-coco.py names it) and `accuracy.json` (the result).
The folder is staged and published atomically once the scoring is done (edgezoo.bundle.staging.BundleStaging): an
interrupted or failed evaluation publishes nothing, so a folder holds either a complete result or no result from
that run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo import zoo
from edgezoo.bundle.outputs import OutputKind, check_destination
from edgezoo.bundle.reader import read_bundle
from edgezoo.bundle.staging import BundleStaging
from edgezoo.core.errors import EdgezooError, UnknownModelError, disk_full, is_disk_full
from edgezoo.datasets import expect_kind, load_image
from edgezoo.evaluation import metrics
from edgezoo.evaluation.accuracy_log import ACCURACY_LOG, write_accuracy_log
from edgezoo.evaluation.engine import run_subject
from edgezoo.evaluation.on_ray import ray_runner
from edgezoo.core.progress import step
from edgezoo.evaluation.subjects import Subject, bundle_folder, bundle_subjects, original_subjects
from edgezoo.evaluation.ti_subjects import Semantics, ti_bundle_subjects, ti_variants
from edgezoo.zoo.schema import ModelCard, Task

__all__ = ["EvalResult", "EvalError", "evaluate", "resolve_subjects", "score_records", "target_percent"]

ACCURACY_JSON = "accuracy.json"


class EvalError(EdgezooError):
    """An evaluation cannot run as asked (a model with a dataset of another task, ...)."""


@dataclass
class EvalResult:
    """One evaluated thing. `value` is in percent, as MLPerf's scripts print it (top-1 or mAP)."""

    what: str
    model: str
    runtime: str
    metric: str  # "top1" | "mAP"
    value: float
    count: int
    full_size: int
    target: float  # percent
    passed: bool | None  # None: not judged (a subset, a stand-in dataset or skipped images)
    images_per_s: float
    seconds: float
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    delta: float | None = None  # value - the reference's (the first result of the same metric and semantics)
    standin_model: bool = False
    standin_dataset: bool = False
    out: str = ""
    semantics: str = "mlperf"  # whose arithmetic: "mlperf" (MLPerf's reference app) or "ti" (TI's benchmark)

    def verdict(self) -> str:
        if self.semantics != "mlperf":
            return "TI's figure: no MLPerf verdict"
        if self.passed is None:
            return f"subset: {self.count:,} of {self.full_size:,}" if self.count < self.full_size or self.skipped \
                else "stand-in data: no verdict"
        return "PASS" if self.passed else "FAIL"


def metric_name(card: ModelCard) -> str:
    return "top1" if card.task is Task.CLASSIFICATION else "mAP"


def target_percent(card: ModelCard) -> float:
    """The card's MLPerf target in percent (cards give top-1 in percent and mAP as a fraction, as MLPerf does)."""
    target = card.accuracy.target
    return target * 100.0 if card.task is Task.DETECTION and target <= 1.0 else target


def score_records(subject: Subject, dataset: Any, records: Sequence[tuple[int, np.ndarray]],
                  detections_json: Path | None = None) -> float:
    """The metric in percent from accuracy-log records, as MLPerf's accuracy scripts compute it."""
    if _semantics(subject) != "mlperf":  # TI's scoring (evaluation.ti_subjects)
        return float(subject.score(dataset, records, detections_json))
    if subject.task is Task.CLASSIFICATION:
        value, _good, _total = metrics.imagenet_top1(records, dataset)
        return float(value)
    value, _score = metrics.coco_map_percent(records, dataset, use_inv_map=subject.use_inv_map,
                                            results_path=detections_json)
    if value < 0:  # COCOeval's -1: no ground-truth box in any evaluated image, so there is nothing to score
        raise EvalError(f"{dataset.root}: the evaluated images have no ground-truth boxes, so mAP is undefined",
                        hint="evaluate more images (--count) or a dataset with annotations")
    return float(value)


def _reference(results: Sequence[EvalResult], result: EvalResult) -> EvalResult | None:
    """What a result's delta is taken against: the first earlier result of the same metric and semantics (TI's
    figure of a bundle against TI's figure of its original), else the first result; none for another metric."""
    if not results or results[0].metric != result.metric:
        return None
    return next((r for r in results if r.metric == result.metric and r.semantics == result.semantics), results[0])


def _semantics(subject: Subject) -> str:
    return getattr(subject, "semantics", "mlperf")


def inputs_of(subjects: Sequence[Subject], dataset: Any) -> list[Path]:
    """What an evaluation reads (models, bundle folders, the dataset): never replaced by what it publishes."""
    paths = [Path(dataset.root)] if getattr(dataset, "root", None) else []
    for s in subjects:
        paths.append(Path(s.model_path))
        if s.source is not None:
            paths.append(Path(s.source.path))
    return paths


def _folders(subjects: Sequence[Subject], out: Path) -> list[Path]:
    """OUT/<model>/<what> per subject, made unique when two subjects share a name."""
    seen: dict[Path, int] = {}
    folders = []
    for s in subjects:
        base = Path(out) / s.card.id / s.slug
        n = seen.get(base, 0) + 1
        seen[base] = n
        folders.append(base if n == 1 else base.with_name(f"{base.name}-{n}"))
    return folders


def evaluate(subjects: Sequence[Subject], dataset: Any, out: Path, *, workers: int | None = None,
             skip_bad: bool = False, progress: bool = True, ray: str | None = None,
             ray_actors: int | None = None) -> list[EvalResult]:
    """Each subject over the dataset; the first (of the same semantics) is the reference for the deltas. Writes OUT/<model>/<what>/.

    `ray`: "auto" or HOST:PORT runs the inference on Ray actors (edgezoo.distributed), same files as locally."""
    for s in subjects:  # every check before anything runs or is written
        expect_kind(dataset, s.card.labels.dataset, s.what)
    for folder in _folders(subjects, out):
        check_destination(folder, OutputKind.EVAL, inputs_of(subjects, dataset))
    if ray is None:
        return _evaluate(subjects, dataset, out, run_subject, workers, skip_bad, progress)

    with ray_runner(ray, actors=ray_actors, progress=progress) as run_one:
        return _evaluate(subjects, dataset, out, run_one, workers, skip_bad, progress)


def _evaluate(subjects: Sequence[Subject], dataset: Any, out: Path, run_subject: Any, workers: int | None,
              skip_bad: bool, progress: bool) -> list[EvalResult]:
    results: list[EvalResult] = []
    for subject, folder in zip(subjects, _folders(subjects, out)):
        run = run_subject(subject, dataset.samples, load_image, workers=workers, skip_bad=skip_bad,
                          progress=progress)
        if not run.records:
            raise EvalError(f"{subject.what}: no image could be evaluated ({len(run.skipped)} skipped)",
                            hint="check the dataset's images")
        skipped = sorted(set(run.skipped) | set(getattr(dataset, "skipped", [])))
        try:
            with BundleStaging(folder, kind=OutputKind.EVAL, inputs=inputs_of(subjects, dataset)) as staging:
                if _semantics(subject) == "mlperf":  # TI's records are not MLPerf's accuracy-log format
                    write_accuracy_log(staging.dir / ACCURACY_LOG, run.records)
                detections = staging.dir / metrics.COCO_RESULTS if subject.task is Task.DETECTION else None
                value = score_records(subject, dataset, run.records, detections)
                result = _result(subject, dataset, run, value, skipped, folder)
                reference = _reference(results, result)
                if reference is not None:
                    result.delta = result.value - reference.value
                staging.add_json(ACCURACY_JSON, result)
                staging.commit()
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full(exc, folder.parent, "writing the evaluation results") from None
            raise EvalError(f"{folder}: cannot write the results ({exc.strerror or exc})",
                            hint="choose a writable --out folder") from None
        results.append(result)
    return results


def _result(subject: Subject, dataset: Any, run: Any, value: float, skipped: list[str], folder: Path) -> EvalResult:
    count = len(run.records)
    full = int(dataset.full_size)
    standin_data = bool(getattr(dataset, "standin", False))
    target = target_percent(subject.card)
    # Only MLPerf's semantics is judged against MLPerf's target; TI's figure is what TI's benchmark would report.
    judged = dataset.is_full and count == full and not skipped and not standin_data and _semantics(subject) == "mlperf"
    return EvalResult(
        what=subject.what, model=subject.card.id, runtime=subject.runtime.value, metric=metric_name(subject.card),
        value=round(value, 3), count=count, full_size=full, target=round(target, 4),
        passed=(value >= target) if judged else None, images_per_s=round(run.images_per_s, 2),
        seconds=round(run.seconds, 2), skipped=len(skipped), skipped_files=skipped, standin_model=subject.standin,
        standin_dataset=standin_data, out=str(folder), semantics=_semantics(subject))


def _card_of(thing: str, allow_edited: bool) -> tuple[ModelCard, Any]:
    """(card, bundle): the model card THING names and, for a bundle folder (read and checked once by bundle.reader,
    its notes said once), the bundle."""
    if Path(thing).exists():
        bundle = read_bundle(bundle_folder(Path(thing)), allow_edited=allow_edited)
        for note in bundle.notes:  # what allow_edited let through
            step(note)
        return bundle.card(), bundle
    try:
        return zoo.get_card(thing), None
    except UnknownModelError as exc:
        raise EdgezooError(f"{thing!r} is neither a bundle folder nor a model id ({exc.message})",
                           hint=exc.hint or "see 'edgezoo list'") from None


def resolve_subjects(things: Sequence[str], dataset: Any, *, semantics: str = "mlperf", standin: bool = False,
                     variant: str = "full", mirror: str | None = None, offline: bool = False,
                     allow_edited: bool = False) -> list[Subject]:
    """What `eval` / `bench` were given: model ids -> original subjects (fetched, or stand-ins), folders -> bundle
    subjects, in the order given, under MLPerf's and/or TI's semantics (`mlperf`, `ti`, `both`); each checked
    against the dataset's kind before any model is loaded or built. `allow_edited`: --allow-edited-bundle."""
    chosen = Semantics(semantics)
    read = [_card_of(thing, allow_edited) for thing in things]
    for thing, (card, _bundle) in zip(things, read):
        expect_kind(dataset, card.labels.dataset, thing)
    subjects: list[Subject] = []
    for thing, (card, bundle) in zip(things, read):
        if bundle is not None:
            if chosen is not Semantics.TI:
                subjects += bundle_subjects(bundle, shown=Path(thing))
            if chosen is not Semantics.MLPERF:
                subjects += ti_bundle_subjects(Path(thing), allow_edited=allow_edited)
        else:
            originals = original_subjects(card, standin=standin, variant=variant, mirror=mirror, offline=offline)
            subjects += ti_variants(originals, chosen)
    return subjects
