"""`edgezoo eval --ray` and `quantize --ray`: subjects evaluated by one pool of Ray actors for the whole run.

The actors start once (distributed.pool.ActorPool) and serve every pass: each builds a group of subjects from their
SubjectSources (the runtime itself cannot be pickled) once, keeps it for later passes, and decodes, preprocesses and
predicts the samples of its shards with the same functions as the local engine, so the records, the skipped images
and their reasons are the local run's, in qsl order. The models and the dataset must be at the same paths on every
node (a shared file system), and edgezoo installed there.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from edgezoo.core.progress import step
from edgezoo.datasets import load_image
from edgezoo.distributed.cluster import ClusterError, parse_ray_target, ray_session
from edgezoo.distributed.pool import ActorPool, PoolStats
from edgezoo.evaluation.engine import EngineRun, prepare
from edgezoo.evaluation.subjects import build_subjects, predict_shared

# One sample's outcome: (qsl_idx, one record per subject or None, skip reason or None, seconds in predict)
Outcome = tuple[int, "list[Any] | None", "str | None", float]

# The runtime each kind of subject needs, imported by the actors while they start.
_RUNTIME_MODULES = {"TensorFlow": "tensorflow", "ONNX Runtime": "onnxruntime", "LiteRT": "ai_edge_litert.interpreter",
                    "ONNX Runtime + caffe_ssd": "onnxruntime"}
_EDGEZOO_MODULES = ("edgezoo.evaluation.subjects", "edgezoo.datasets", "edgezoo.verify.detectors")


def preload_modules(subjects: Sequence[Any] = (), model_paths: Sequence[Path] = ()) -> list[str]:
    """What an actor imports while it starts, for these subjects / model files."""
    runtimes = [_RUNTIME_MODULES.get(s.runtime.value) for s in subjects]
    by_suffix = {".pb": "tensorflow", ".onnx": "onnxruntime", ".tflite": "ai_edge_litert.interpreter"}
    runtimes += [by_suffix.get(Path(p).suffix.lower()) for p in model_paths]
    return list(dict.fromkeys([*_EDGEZOO_MODULES, *filter(None, runtimes)]))


class _Evaluator:
    """Runs in the actor: the group's subjects built once (sharing their model pass), then one sample at a time
    exactly as the local engine does."""

    def __init__(self, sources: tuple[Any, ...], skip_bad: bool, threads: int) -> None:
        self.subjects = build_subjects(sources, threads=threads)
        self.skip_bad = skip_bad

    def __call__(self, sample: Any) -> Outcome:
        tensor, reason = prepare(sample, load_image, self.subjects[0].preprocess, skip_bad=self.skip_bad)
        if tensor is None:
            return sample.index, None, reason, 0.0
        t0 = time.perf_counter()
        records = predict_shared(self.subjects, tensor, sample.index)
        return sample.index, records, None, time.perf_counter() - t0

    def close(self) -> None:
        for subject in self.subjects:
            subject.close()


def run_on_ray(subjects: Sequence[Any], samples: Sequence[Any], pool: ActorPool, *, skip_bad: bool = False,
               progress: bool = True, label: str | None = None, stats: PoolStats | None = None) -> list[EngineRun]:
    """A group of subjects (sharing one preprocessing, see subjects.shared_groups) over `samples` on the pool's
    actors, as engine.run_group returns it."""
    for subject in subjects:
        if subject.source is None:
            raise ClusterError(f"{subject.what}: cannot be rebuilt on a Ray actor (it was not made by "
                               f"original_subjects / bundle_subjects)", hint="evaluate it without --ray")
    sources = tuple(s.source for s in subjects)
    results = [EngineRun() for _ in subjects]
    stats = stats if stats is not None else PoolStats()
    start = time.perf_counter()
    outcomes = pool.map(("eval", sources, skip_bad), functools.partial(_Evaluator, sources, skip_bad, pool.cpus),
                        samples, label=label or " + ".join(s.what for s in subjects), progress=progress, stats=stats)
    for qsl_idx, records, reason, seconds in outcomes:
        for i, result in enumerate(results):
            if records is None:
                result.skipped.append(reason or str(qsl_idx))
            else:
                result.records.append((qsl_idx, records[i]))
                result.infer_seconds += seconds
    # As locally, the time to load the models is not in the rate (the driver reports it on stderr).
    for result in results:
        result.seconds = time.perf_counter() - start - stats.load_s
    return results


@contextlib.contextmanager
def ray_pool(target: str, *, actors: int | None = None, threads: int | None = None, progress: bool = True,
             preload: Sequence[str] = ()) -> Iterator[ActorPool]:
    """A Ray session on `target` and one pool of actors for a whole run: `actors` (default: as many as the cluster's
    CPUs hold) of `threads` CPUs each (default 1), whose runtimes run that many threads."""
    parsed = parse_ray_target(target)
    cpus = threads or 1
    with ray_session(parsed) as session:
        count = session.actors_of(cpus)
        if count < 1:
            largest = max(session.node_cpus, default=session.cpus)
            raise ClusterError(f"--threads {cpus}: each actor needs {cpus} CPUs on one node, and no node of the "
                               f"cluster has that many (at most {largest})",
                               hint=f"use --threads {max(1, largest)} or fewer")
        if actors and actors > count:  # the others would wait for CPUs until START_TIMEOUT_S
            step(f"Ray: --ray-actors {actors}, but the cluster has {session.cpus} CPU(s): using {count}")
        count = min(actors or count, count)
        if progress:
            step(f"Ray {parsed}: {session.nodes} node(s), {session.cpus} CPU(s), {count} actor(s)"
                 f"{f' of {cpus} CPUs' if cpus > 1 else ''}; ready in {session.startup_s:.1f} s")
        with ActorPool(count, cpus=cpus, preload=preload) as pool:
            yield pool
            if progress:
                step(f"Ray: {pool.starts} actor(s) started for this run ({pool.died} died)")


def _report(stats: PoolStats, what: str) -> None:
    step(f"Ray: {stats.actors} actor(s) loaded {what} in {stats.load_s:.1f} s; shards of {stats.shard_size} ran on "
         f"{stats.nodes} node(s), {len(stats.hosts)} actor process(es)")
    if stats.died or stats.retried_shards:
        step(f"Ray: {stats.died} actor(s) died, {stats.retried_shards} shard(s) run again elsewhere; nothing lost "
             f"or counted twice")


@contextlib.contextmanager
def ray_runner(target: str, *, actors: int | None = None, threads: int | None = None, progress: bool = True,
               subjects: Sequence[Any] = ()) -> Iterator[Callable[..., list[EngineRun]]]:
    """One pool of actors for a whole evaluation, yielding a drop-in for engine.run_group (same arguments; images
    are always decoded with datasets.load_image, in the actors). `subjects`: those the run will evaluate (their
    runtimes are imported by the actors while they start)."""
    with ray_pool(target, actors=actors, threads=threads, progress=progress,
                  preload=preload_modules(subjects)) as pool:
        def run(group: Sequence[Any], samples: Sequence[Any], load: Any = None, *, workers: int | None = None,
                skip_bad: bool = False, progress: bool = progress, label: str | None = None) -> list[EngineRun]:
            stats = PoolStats()
            runs = run_on_ray(group, samples, pool, skip_bad=skip_bad, progress=progress, label=label, stats=stats)
            if progress:
                _report(stats, " + ".join(s.what for s in group))
            return runs

        yield run


# (qsl_idx, preprocessed tensor) -> (qsl_idx, record)
Predict = Callable[[Any, Sequence[tuple[int, Any]]], list[tuple[int, Any]]]


class _Predictor:
    """Runs in the actor: one model variant built once, then subject.predict on tensors the driver preprocessed."""

    def __init__(self, source: Any, threads: int) -> None:
        (self.subject,) = build_subjects([source], threads=threads)

    def __call__(self, item: tuple[int, Any]) -> tuple[int, Any]:
        return item[0], self.subject.predict(item[1], item[0])

    def close(self) -> None:
        self.subject.close()


def _variant(subject: Any) -> tuple[Any, ...]:
    """What identifies a model variant: where it is built from, and the model file's size and time (a file
    rewritten in place is another variant)."""
    stat = Path(subject.model_path).stat()
    return "predict", subject.source, str(Path(subject.model_path).resolve()), stat.st_size, stat.st_mtime_ns


@contextlib.contextmanager
def ray_predictor(target: str, *, actors: int | None = None, progress: bool = True,
                  model_paths: Sequence[Path] = ()) -> Iterator[Predict]:
    """One pool of actors for a whole run, yielding predict(subject, [(qsl_idx, tensor)]) -> [(qsl_idx, record)]
    in order: for passes that preprocess once and evaluate many model variants on the same tensors (quantize). The
    tensors of an items list are sent to Ray's object store once, whatever the number of passes over them."""
    with ray_pool(target, actors=actors, progress=progress, preload=preload_modules((), model_paths)) as pool:
        stored: dict[int, tuple[Sequence[Any], Any]] = {}

        def predict(subject: Any, items: Sequence[tuple[int, Any]]) -> list[tuple[int, Any]]:
            if subject.source is None:
                raise ClusterError(f"{subject.what}: cannot be rebuilt on a Ray actor", hint="run without --ray")
            if id(items) not in stored or stored[id(items)][0] is not items:
                stored[id(items)] = (items, pool.shards(items))
            return pool.map(_variant(subject), functools.partial(_Predictor, subject.source, pool.cpus),
                            stored[id(items)][1], label=Path(subject.model_path).name, progress=progress)

        yield predict
