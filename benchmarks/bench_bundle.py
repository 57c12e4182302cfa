"""What the bundle's safety costs: the folder lock, a full staging + commit cycle, and cleaning stale staging
folders left by killed runs.

Usage: .venv/bin/python benchmarks/bench_bundle.py [--runs N]
Prints a table of median wall times (ms) over N runs, in a temporary folder under the current one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from timing import median_ms

from edgezoo.bundle.staging import BundleStaging, clean_stale
from edgezoo.core.locks import flocked
from edgezoo.core.report import render_table

MODEL_BYTES = 1 << 20  # a 1 MiB "model"


def _cycle(final: Path, payload: bytes) -> None:
    with BundleStaging(final) as staging:
        (staging.workdir / "model.bin").write_bytes(payload)
        staging.add_file(staging.workdir / "model.bin", "model.bin")
        staging.add_json("manifest.json", {"size": len(payload)})
        staging.commit()


def _leave_stale(folder: Path, count: int) -> None:
    """`count` staging folders as kill -9 leaves them (nobody holds their lock), each with a 1 MiB file."""
    for i in range(count):
        work = folder / f".tflite.staging-{i:012x}" / ".work"
        work.mkdir(parents=True)
        (work / "half.bin").write_bytes(bytes(MODEL_BYTES))


def _median_ms_after(setup: Callable[[], object], fn: Callable[[], object], runs: int) -> float:
    """Median of fn's wall time, with `setup` (untimed) before each call."""
    times = []
    for _ in range(runs):
        setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    payload = os.urandom(MODEL_BYTES)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()

        def lock_once() -> None:
            with flocked(folder, "bench", quiet=True):
                pass

        def clean() -> None:
            with contextlib.redirect_stderr(io.StringIO()):  # its "removed N folders" line
                clean_stale(folder)

        rows = [["flocked(folder): open + flock + close", f"{median_ms(lock_once, args.runs * 10):.3f}"],
                ["bundle cycle, 1 MiB model, replacing a bundle",
                 f"{median_ms(lambda: _cycle(folder / 'tflite', payload), args.runs):.2f}"],
                ["clean_stale, nothing stale (every export pays this)", f"{median_ms(clean, args.runs):.3f}"]]
        for count in (1, 10):
            rows.append([f"clean_stale, {count} stale staging folder(s) of 1 MiB",
                         f"{_median_ms_after(lambda: _leave_stale(folder, count), clean, args.runs):.2f}"])
    print(f"Bundle safety costs, median of {args.runs} runs (lock: {args.runs * 10}), {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}")
    print(render_table(["operation", "median ms"], rows))


if __name__ == "__main__":
    main()
