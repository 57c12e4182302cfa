"""The evaluation loop: images decoded and preprocessed on a thread pool while the runtime runs, results in order.

Threads, not processes: OpenCV's imread/resize, numpy's arithmetic and the runtimes all release the GIL, and a
thread pool needs no pickling of the subject (a TF session or LiteRT interpreter cannot be pickled). The pool is
sized to the cores and runs at most `2 x workers` images ahead of inference, so memory stays bounded (a 1200x1200
float input is 17 MB). Results are taken from the futures in submission order, so they land in sample order
whatever finishes first.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgezoo.core.errors import EdgezooError
from edgezoo.core.progress import CountBar


@dataclass
class EngineRun:
    """What one subject produced over a dataset: records in sample order, skipped images, timings."""

    records: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (qsl_idx, record)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the loop
    infer_seconds: float = 0.0  # time inside predict

    @property
    def images_per_s(self) -> float:
        return len(self.records) / self.seconds if self.seconds > 0 else 0.0


def default_workers() -> int:
    """One preprocessing thread per core (the runtime's own threads overlap with them while they wait on I/O)."""
    return max(1, os.cpu_count() or 1)


def prepare(sample: Any, load: Callable[[Any], np.ndarray], preprocess: Callable[[np.ndarray], np.ndarray], *,
            skip_bad: bool = False) -> tuple[np.ndarray | None, str | None]:
    """(input, None), or (None, reason) for a bad image when `skip_bad` (the one place that decides: the Ray actors
    call it too, so a distributed run skips exactly what a local one does)."""
    try:
        return preprocess(load(sample)), None
    except EdgezooError as exc:
        if not skip_bad:
            raise
        return None, str(exc)


def prepared_inputs(samples: Sequence[Any], load: Callable[[Any], np.ndarray],
                    preprocess: Callable[[np.ndarray], np.ndarray], *, workers: int | None = None,
                    skip_bad: bool = False) -> Iterator[tuple[Any, np.ndarray | None, str | None]]:
    """(sample, input, None) in sample order; (sample, None, reason) for a bad image when `skip_bad`.

    `workers=0` decodes and preprocesses inline (the serial baseline of the benchmarks)."""

    def work(sample: Any) -> tuple[np.ndarray | None, str | None]:
        return prepare(sample, load, preprocess, skip_bad=skip_bad)

    workers = default_workers() if workers is None else workers
    if workers == 0:
        for sample in samples:
            yield (sample, *work(sample))
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edgezoo-pre")
    pending: deque[tuple[Any, Future]] = deque()
    it = iter(samples)
    try:
        for sample in it:
            pending.append((sample, pool.submit(work, sample)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            sample, future = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(work, nxt)))
            yield (sample, *future.result())
    finally:
        # Interrupted or failed: drop what is queued, do not wait for a long queue to drain.
        pool.shutdown(wait=True, cancel_futures=True)


def run_subject(subject: Any, samples: Sequence[Any], load: Callable[[Any], np.ndarray], *,
                workers: int | None = None, skip_bad: bool = False, progress: bool = True,
                label: str | None = None) -> EngineRun:
    """Every sample through `subject.preprocess` (pool) and `subject.predict` (this thread), in order.

    Records carry `sample.index` (MLPerf's qsl_idx: the val_map line / annotations position, kept when images are
    skipped, so MLPerf's accuracy scripts score them against the unmodified dataset); `load(sample)` decodes one
    image (BGR uint8)."""
    result = EngineRun()
    bar = CountBar(label or subject.what, len(samples), enabled=progress)
    start = time.perf_counter()
    try:
        inputs = prepared_inputs(samples, load, subject.preprocess, workers=workers, skip_bad=skip_bad)
        for sample, tensor, reason in inputs:
            if tensor is None:
                result.skipped.append(reason or str(sample.path))
            else:
                t0 = time.perf_counter()
                record = subject.predict(tensor, sample.index)
                result.infer_seconds += time.perf_counter() - t0
                result.records.append((sample.index, record))
            bar.update(1)
    except BaseException:
        bar.close(failed=True)
        raise
    result.seconds = time.perf_counter() - start
    bar.close()
    return result
