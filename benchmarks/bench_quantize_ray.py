"""Figures: `edgezoo quantize --ray` (the --dataset passes on Ray actors) vs the local run.

Usage: .venv/bin/python benchmarks/bench_quantize_ray.py [--variant reduced|full] [--count N] [--ray auto|HOST:PORT]
Prints one table: the TIDL preview of MobileNet with --sensitivity (float, quantized and one probe per layer, each
a pass over the images), wall time locally and on Ray, Ray's share in start-up, and whether the figures are equal.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

from bench_quantize import prepare, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="reduced", choices=("reduced", "full"))
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--ray", default="auto")
    args = parser.parse_args()
    from edgezoo.quantize import quantize_bundle

    with tempfile.TemporaryDirectory() as tmp:
        bundles, data = prepare("mobilenet-v1", args.variant, args.count, Path(tmp))
        rows, figures = [], []
        for ray in (None, args.ray):
            t0 = time.perf_counter()
            result = quantize_bundle(bundles["onnx"], data, frames=4, dataset=data, sensitivity=True,
                                     out=Path(tmp) / f"q-{ray}", ray=ray)
            seconds = time.perf_counter() - t0
            passes = 2 + len(result.sensitivity)
            figures.append(([s.value for s in result.scores], [(r.name, r.metric_if_float) for r in result.sensitivity]))
            rows.append([f"--ray {ray}" if ray else "local", str(args.count), str(passes), f"{seconds:.1f}",
                         f"{seconds / passes:.2f}"])
        print(table(["run", "images", "passes", "seconds", "s / pass"], rows))
        print(f"figures equal: {figures[0] == figures[1]}")


if __name__ == "__main__":
    main()
