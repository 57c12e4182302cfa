"""`edgezoo quantize --ray` (the --dataset passes on one pool of Ray actors) vs the local run, and actor starts.

Usage: .venv/bin/python benchmarks/bench_quantize_ray.py [--variant reduced|full] [--counts 24,96] [--repeat 3]
                                                         [--ray auto|HOST:PORT]
The TIDL preview of MobileNet with --sensitivity (float, quantized and one probe per layer: each a pass over the
images) on the same stand-in bundle and dataset, locally and with --ray, alternately, --repeat times per dataset
size. Prints per run the wall times, their ratio (the Ray run includes starting Ray itself), the actor starts of
the Ray run (read from its own report) against its passes, and whether quantize.json's figures are equal; then the
median ratio per dataset size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

from bench_quantize import prepare, table  # noqa: E402

RUN_FIELDS = {"bundle", "calibration_seconds"}  # quantize.json fields that are the run's own


def _run(bundle: Path, data: Path, out: Path, ray: str | None) -> tuple[float, dict, str]:
    """(seconds, quantize.json, what the run said on stderr)."""
    from edgezoo.quantize import quantize_bundle

    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err):
        result = quantize_bundle(bundle, data, frames=4, dataset=data, sensitivity=True, out=out, ray=ray)
    seconds = time.perf_counter() - t0
    return seconds, json.loads((result.bundle / "quantize.json").read_text()), err.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="reduced", choices=("reduced", "full"))
    parser.add_argument("--counts", default="24,96", help="dataset sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ray", default="auto")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]

    rows, medians = [], []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("EDGEZOO_CACHE", str(Path(tmp) / "cache"))
        for count in counts:
            bundles, data = prepare("mobilenet-v1", args.variant, count, Path(tmp) / f"n{count}")
            ratios = []
            for i in range(args.repeat):
                local_s, local, _ = _run(bundles["onnx"], data, Path(tmp) / f"local-{count}-{i}", None)
                ray_s, on_ray, said = _run(bundles["onnx"], data, Path(tmp) / f"ray-{count}-{i}", args.ray)
                passes = 2 + len(local["sensitivity"])
                started = re.search(r"Ray: (\d+) actor\(s\) started for this run", said)
                actors = re.search(r"CPU\(s\), (\d+) actor\(s\)", said)
                ready = re.search(r"ready in ([\d.]+) s", said)
                equal = {k for k in local if local[k] != on_ray[k]} <= RUN_FIELDS
                ratios.append(ray_s / local_s)
                rows.append([str(count), str(i + 1), str(passes), f"{local_s:.1f}", f"{ray_s:.1f}",
                             f"{ready.group(1) if ready else '?'}", f"{ray_s / local_s:.2f}",
                             f"{started.group(1) if started else '?'} / {actors.group(1) if actors else '?'}",
                             "yes" if equal else "NO"])
            medians.append([str(count), str(passes), f"{statistics.median(ratios):.2f}",
                            f"{min(ratios):.2f}-{max(ratios):.2f}"])
    load = os.getloadavg()
    print(f"mobilenet-v1 ({args.variant} stand-in) ONNX bundle, tidl-preview --sensitivity, --ray {args.ray}; "
          f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end\n")
    print(table(["images", "run", "passes", "local s", "--ray s", "Ray start-up s", "ray / local",
                 "actor starts / actors", "figures equal"], rows))
    print()
    print(table(["images", "passes", "median ray / local", "range"], medians))


if __name__ == "__main__":
    main()
