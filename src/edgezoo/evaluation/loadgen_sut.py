"""A subject as a system-under-test of the real MLPerf LoadGen (mlperf_loadgen), over a dataset as its QSL.

As MLPerf's reference main.py: the QSL's load callback preprocesses the samples LoadGen asks for into memory (on
the engine's pool) and unload drops them; SingleStream answers each query inline in issue_queries; Offline gets one
query with every sample and answers sample by sample; responses are the float32 record bytes (what eval writes),
so LoadGen's mlperf_log_accuracy.json in AccuracyOnly mode holds the same records eval's does and scores to the
same number. Five warm-up predictions run before the test (as main.py), and time one inference for LoadGen's
expected latency / QPS hints.

LoadGen writes its logs (mlperf_log_summary.txt, _detail.txt, _accuracy.json, _trace.json) into a staging folder
that is published atomically when the run is over; an interrupted run publishes nothing.
"""

from __future__ import annotations

import array
import re
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.bundle.outputs import OutputKind, check_destination
from edgezoo.bundle.staging import BundleStaging
from edgezoo.core.errors import EdgezooError, disk_full, is_disk_full
from edgezoo.datasets import expect_kind, load_image
from edgezoo.evaluation.accuracy_log import ACCURACY_LOG, read_accuracy_log
from edgezoo.evaluation.api import inputs_of, metric_name, score_records
from edgezoo.evaluation.engine import prepared_inputs
from edgezoo.evaluation.subjects import Subject
from edgezoo.zoo.schema import Mlperf

__all__ = ["Scenario", "BenchResult", "run_loadgen", "parse_summary"]

WARMUP = 5
SUMMARY = "mlperf_log_summary.txt"


class Scenario(str, Enum):
    SINGLE_STREAM = "SingleStream"
    OFFLINE = "Offline"


@dataclass
class BenchResult:
    what: str
    scenario: str
    mode: str  # "PerformanceOnly" | "AccuracyOnly"
    valid: bool | None  # "Result is : VALID" (None in accuracy mode, where LoadGen judges nothing)
    figures: dict[str, float] = field(default_factory=dict)  # LoadGen's summary figures
    accuracy: float | None = None  # percent, scored from LoadGen's own accuracy log
    metric: str = ""
    count: int = 0
    out: str = ""
    summary_lines: list[str] = field(default_factory=list)


# The summary lines edgezoo reports, by the name LoadGen prints them with.
_FIGURES = {
    "90.0th percentile latency (ns)": "p90_latency_ns",
    "90th percentile latency (ns)": "p90_latency_ns",
    "Samples per second": "samples_per_s",
    "Mean latency (ns)": "mean_latency_ns",
    "QPS w/o loadgen overhead": "qps_without_overhead",
}


def parse_summary(text: str) -> tuple[bool | None, dict[str, float], list[str]]:
    """(VALID?, figures, the lines that carry them) from mlperf_log_summary.txt."""
    valid, verdict = None, []
    figures: dict[str, float] = {}
    lines = []
    for line in text.splitlines():
        m = re.match(r"\s*Result is\s*:\s*(VALID|INVALID)", line)
        if m:
            valid = m.group(1) == "VALID"
            verdict = [line.strip()]  # printed last, after the figures it judges
            continue
        key, sep, value = line.partition(":")
        name = _FIGURES.get(key.strip())
        if sep and name and name not in figures:
            try:
                figures[name] = float(value.strip())
            except ValueError:
                continue
            lines.append(line.strip())
    return valid, figures, lines + verdict


class _Sut:
    """QSL + SUT callbacks around one subject. Preprocessed inputs live in `self.loaded` between load and unload."""

    def __init__(self, subject: Subject, dataset: Any, workers: int | None) -> None:
        self.subject, self.dataset, self.workers = subject, dataset, workers
        self.samples = dataset.samples
        self.loaded: dict[int, np.ndarray] = {}
        self.error: BaseException | None = None

    # QSL
    def load(self, indices: list[int]) -> None:
        wanted = [i for i in indices if i not in self.loaded]
        try:
            tensors = prepared_inputs([self.samples[i] for i in wanted], load_image, self.subject.preprocess,
                                      workers=self.workers)
            for i, (_, tensor, _) in zip(wanted, tensors):
                self.loaded[i] = tensor
        except BaseException as exc:  # LoadGen calls from C++: keep the error, fail after the test
            self.error = self.error or exc

    def unload(self, indices: list[int]) -> None:
        for i in indices:
            self.loaded.pop(i, None)

    # SUT
    def issue(self, queries: list[Any]) -> None:
        import mlperf_loadgen as lg

        for q in queries:
            try:
                # LoadGen numbers the QSL by position; the record carries MLPerf's qsl_idx (Sample.index), the same
                # number unless --skip-bad left images out (the log is then re-keyed before scoring).
                record = self.subject.predict(self.loaded[q.index], self.samples[q.index].index)
            except BaseException as exc:
                self.error = self.error or exc
                record = np.zeros(0, np.float32)
            data = array.array("B", np.ascontiguousarray(record, np.float32).tobytes())
            address, length = data.buffer_info()
            # LoadGen copies the bytes (accuracy mode) before QuerySamplesComplete returns.
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, address, length * data.itemsize)])

    def flush(self) -> None:
        pass


def _settings(scenario: Scenario, accuracy: bool, min_duration_ms: int, min_query_count: int,
              perf_count: int, latency_s: float) -> Any:
    import mlperf_loadgen as lg

    s = lg.TestSettings()
    s.scenario = lg.TestScenario.SingleStream if scenario is Scenario.SINGLE_STREAM else lg.TestScenario.Offline
    s.mode = lg.TestMode.AccuracyOnly if accuracy else lg.TestMode.PerformanceOnly
    s.min_duration_ms = min_duration_ms
    s.min_query_count = min_query_count
    s.performance_sample_count_override = perf_count
    # Hints from the warm-up timing, so that LoadGen sizes the run to min_duration (its defaults assume 1 ms / 1 QPS).
    s.single_stream_expected_latency_ns = max(1, int(latency_s * 1e9))
    # Offline issues expected_qps x min_duration samples in one query: an estimate that is too low ends the run
    # before min_duration (INVALID), one too high only lengthens it, so the warm-up figure is doubled.
    s.offline_expected_qps = max(1.0, 2.0 / max(latency_s, 1e-6))
    return s


def run_loadgen(subject: Subject, dataset: Any, out: Path, *, scenario: Scenario, accuracy: bool = False,
                min_duration_ms: int, min_query_count: int,
                performance_sample_count: int | None = None, workers: int | None = None) -> BenchResult:
    """One LoadGen test of `subject` over `dataset`; logs published in `out`. --accuracy: AccuracyOnly + scoring."""
    import mlperf_loadgen as lg

    expect_kind(dataset, subject.card.labels.dataset, subject.what)
    check_destination(out, OutputKind.BENCH, inputs_of([subject], dataset))  # before the run, not after it
    total = len(dataset.samples)
    # MLPerf main.py: min(count, the model's performance sample count), from the card (500 unless it says otherwise).
    card_count = (subject.card.mlperf or Mlperf).performance_sample_count
    perf_count = min(total, performance_sample_count or card_count)
    sut = _Sut(subject, dataset, workers)
    latency = _warm_up(sut)
    mode = "AccuracyOnly" if accuracy else "PerformanceOnly"
    try:
        with BundleStaging(out, kind=OutputKind.BENCH, inputs=inputs_of([subject], dataset)) as staging:
            log_settings = lg.LogSettings()
            log_settings.log_output.outdir = str(staging.dir)
            log_settings.log_output.copy_summary_to_stdout = False
            log_settings.enable_trace = False
            settings = _settings(scenario, accuracy, min_duration_ms, min_query_count, perf_count, latency)
            sut_handle = lg.ConstructSUT(sut.issue, sut.flush)
            qsl_handle = lg.ConstructQSL(total, perf_count, sut.load, sut.unload)
            try:
                lg.StartTestWithLogSettings(sut_handle, qsl_handle, settings, log_settings)
            finally:
                lg.DestroyQSL(qsl_handle)
                lg.DestroySUT(sut_handle)
            if sut.error is not None:
                if isinstance(sut.error, (EdgezooError, KeyboardInterrupt)):
                    raise sut.error
                raise EdgezooError(f"{subject.what}: failed during the LoadGen run: "
                                   f"{type(sut.error).__name__}: {sut.error}")
            valid, figures, lines = parse_summary((staging.dir / SUMMARY).read_text(encoding="utf-8"))
            result = BenchResult(subject.what, scenario.value, mode, None if accuracy else valid, figures,
                                 metric=metric_name(subject.card), count=total, out=str(out), summary_lines=lines)
            if accuracy:
                logged = read_accuracy_log(staging.dir / ACCURACY_LOG)
                records = [(sut.samples[r.qsl_idx].index, r.data) for r in logged]
                result.accuracy = round(score_records(subject, dataset, records), 3)
            staging.commit()
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(exc, Path(out).parent, "writing LoadGen's logs") from None
        raise EdgezooError(f"{out}: cannot write LoadGen's logs ({exc.strerror or exc})",
                           hint="choose a writable --out folder") from None
    return result


def _warm_up(sut: _Sut) -> float:
    """WARMUP predictions on the first sample (as main.py); returns the median inference time in seconds."""
    sut.load([0])
    if sut.error is not None:
        raise sut.error
    times = []
    for _ in range(WARMUP):
        t0 = time.perf_counter()
        sut.subject.predict(sut.loaded[0], sut.samples[0].index)
        times.append(time.perf_counter() - t0)
    sut.unload([0])
    return float(np.median(times))
