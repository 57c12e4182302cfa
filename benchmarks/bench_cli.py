"""CLI start-up time: `edgezoo --help` and `edgezoo list` as fresh processes (wall time), vs `python -c pass`.

Usage: .venv/bin/python benchmarks/bench_cli.py [--runs N]
Prints a table (median, min, max over N runs; first a warm-up run of each so disk caches are hot).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from edgezoo.core.report import render_table


def _time(cmd: list[str], runs: int) -> list[float]:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    bindir = Path(sys.executable).parent
    edgezoo = str(bindir / "edgezoo") if (bindir / "edgezoo").exists() else None
    base = [edgezoo] if edgezoo else [sys.executable, "-m", "edgezoo"]
    cases = [("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
             ("edgezoo --help", base + ["--help"]),
             ("edgezoo list", base + ["list"])]
    rows = []
    baseline = None
    for label, cmd in cases:
        t = _time(cmd, args.runs)
        med = statistics.median(t)
        baseline = baseline if baseline is not None else med
        rows.append([label, f"{med * 1000:.0f}", f"{min(t) * 1000:.0f}", f"{max(t) * 1000:.0f}",
                     f"{(med - baseline) * 1000:+.0f}" if label != cases[0][0] else "-"])
    print(f"CLI start-up, {args.runs} runs each (wall time of a fresh process), {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}")
    print(render_table(["command", "median ms", "min ms", "max ms", "over baseline ms"], rows))


if __name__ == "__main__":
    main()
