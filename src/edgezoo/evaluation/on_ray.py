"""`edgezoo eval --ray`: a subject evaluated by a pool of Ray actors, as engine.run_subject evaluates it locally.

Each actor builds the subject once from its SubjectSource (the runtime itself cannot be pickled) and decodes,
preprocesses and predicts the samples of its shards with the same functions as the local engine, so the records,
the skipped images and their reasons are the local run's, in qsl order. The models and the dataset must be at the
same paths on every node (a shared file system), and edgezoo installed there.
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
from edgezoo.distributed.pool import PoolStats, map_in_order
from edgezoo.evaluation.engine import EngineRun, prepare

# One sample's outcome: (qsl_idx, record or None, skip reason or None, seconds in predict)
Outcome = tuple[int, Any, "str | None", float]


def _evaluator(source: Any, skip_bad: bool) -> Callable[[Any], Outcome]:
    """Runs in the actor: the subject built once, then one sample at a time exactly as the local engine does."""
    subject = source.build()

    def one(sample: Any) -> Outcome:
        tensor, reason = prepare(sample, load_image, subject.preprocess, skip_bad=skip_bad)
        if tensor is None:
            return sample.index, None, reason, 0.0
        t0 = time.perf_counter()
        record = subject.predict(tensor, sample.index)
        return sample.index, record, None, time.perf_counter() - t0

    return one


def run_on_ray(subject: Any, samples: Sequence[Any], *, actors: int, skip_bad: bool = False,
               progress: bool = True, label: str | None = None, stats: PoolStats | None = None) -> EngineRun:
    """`subject` over `samples` on the connected Ray (see ray_session), as engine.run_subject returns it."""
    if subject.source is None:
        raise ClusterError(f"{subject.what}: cannot be rebuilt on a Ray actor (it was not made by "
                           f"original_subjects / bundle_subjects)", hint="evaluate it without --ray")
    result = EngineRun()
    stats = stats if stats is not None else PoolStats()
    start = time.perf_counter()
    outcomes = map_in_order(functools.partial(_evaluator, subject.source, skip_bad), samples, actors=actors,
                            label=label or subject.what, progress=progress, stats=stats)
    for qsl_idx, record, reason, seconds in outcomes:
        if record is None:
            result.skipped.append(reason or str(qsl_idx))
        else:
            result.records.append((qsl_idx, record))
            result.infer_seconds += seconds
    # As locally, the time to load the models is not in the rate (the driver reports it on stderr).
    result.seconds = time.perf_counter() - start - stats.load_s
    return result


@contextlib.contextmanager
def _ray_actors(target: str, actors: int | None, progress: bool) -> Iterator[int]:
    """A Ray session on `target` for a whole run, yielding how many actors a pass uses (at most one per CPU)."""
    parsed = parse_ray_target(target)
    with ray_session(parsed) as session:
        count = max(1, session.cpus)
        if actors and actors > count:  # one CPU per actor: the others would wait for a CPU until START_TIMEOUT_S
            step(f"Ray: --ray-actors {actors}, but the cluster has {count} CPU(s): using {count}")
        count = min(actors or count, count)
        if progress:
            step(f"Ray {parsed}: {session.nodes} node(s), {session.cpus} CPU(s), {count} actor(s); "
                 f"ready in {session.startup_s:.1f} s")
        yield count


@contextlib.contextmanager
def ray_runner(target: str, *, actors: int | None = None, progress: bool = True) -> Iterator[Callable[..., EngineRun]]:
    """A Ray session for a whole evaluation, yielding a drop-in for engine.run_subject (same arguments; images
    are always decoded with datasets.load_image, in the actors)."""
    with _ray_actors(target, actors, progress) as count:
        def run(subject: Any, samples: Sequence[Any], load: Any = None, *, workers: int | None = None,
                skip_bad: bool = False, progress: bool = progress, label: str | None = None) -> EngineRun:
            stats = PoolStats()
            run = run_on_ray(subject, samples, actors=count, skip_bad=skip_bad, progress=progress, label=label,
                             stats=stats)
            if progress:
                step(f"Ray: {stats.actors} actor(s) loaded {subject.what} in {stats.load_s:.1f} s; shards of "
                     f"{stats.shard_size} ran on {stats.nodes} node(s), {len(stats.hosts)} actor process(es)")
            if progress and (stats.died or stats.retried_shards):
                step(f"Ray: {stats.died} actor(s) died, {stats.retried_shards} shard(s) run again elsewhere; "
                     f"nothing lost or counted twice")
            return run

        yield run


# (qsl_idx, preprocessed tensor) -> (qsl_idx, record)
Predict = Callable[[Any, Sequence[tuple[int, Any]]], list[tuple[int, Any]]]


def _predictor(source: Any) -> Callable[[tuple[int, Any]], tuple[int, Any]]:
    """Runs in the actor: the subject built once, then subject.predict on tensors the driver preprocessed."""
    subject = source.build()
    return lambda item: (item[0], subject.predict(item[1], item[0]))


@contextlib.contextmanager
def ray_predictor(target: str, *, actors: int | None = None, progress: bool = True) -> Iterator[Predict]:
    """A Ray session for a whole run, yielding predict(subject, [(qsl_idx, tensor)]) -> [(qsl_idx, record)] in
    order: for passes that preprocess once and evaluate many model variants on the same tensors (quantize)."""
    with _ray_actors(target, actors, progress) as count:
        def predict(subject: Any, items: Sequence[tuple[int, Any]]) -> list[tuple[int, Any]]:
            if subject.source is None:
                raise ClusterError(f"{subject.what}: cannot be rebuilt on a Ray actor", hint="run without --ray")
            return map_in_order(functools.partial(_predictor, subject.source), items, actors=count,
                                label=Path(subject.model_path).name, progress=progress)

        yield predict
