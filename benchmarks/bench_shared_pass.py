"""An ONNX SSD bundle's two subjects (its ONNX tail and its meta_arch.prototxt decoding) from one inference per image.

Usage: .venv/bin/python benchmarks/bench_shared_pass.py [--models ssd-mobilenet-v1:full,ssd-resnet34-1200:reduced]
                                                        [--count 48] [--repeat 3]
Per model (a stand-in exported with --to onnx, a stand-in COCO of --count images), in one process, alternately,
--repeat times: `evaluate` of the tail alone ("one subject"), of both subjects together ("both": one loop, the heads
computed once and decoded both ways), and of the two one after the other ("two loops": what eval did before, the
backbone run twice). Wall time includes decoding, preprocessing, inference and scoring, as `edgezoo eval` spends it.
The files written by "both" are checked equal, byte for byte, to those of the two separate loops. "loop" columns:
the image loop alone (what the shared pass changes), without each subject's own COCO scoring after it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def table(headers, rows) -> str:
    from edgezoo.core.report import render_table

    return render_table(headers, rows)


def _timed(subjects, dataset, out: Path) -> tuple[float, float]:
    """(wall seconds of the whole evaluation, seconds of its image loop: decoding, preprocessing, inference and
    the subjects' decodings, without the COCO scoring each subject has of its own)."""
    from edgezoo.evaluation.api import evaluate

    t0 = time.perf_counter()
    results = evaluate(subjects, dataset, out, progress=False)
    return time.perf_counter() - t0, max(r.seconds for r in results)  # a group's results share one loop


def _same_files(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "accuracy.json")
    return bool(files) and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ssd-mobilenet-v1:full,ssd-resnet34-1200:reduced")
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from edgezoo import zoo
    from edgezoo.datasets import build_standin, open_dataset
    from edgezoo.evaluation.subjects import bundle_subjects
    from edgezoo.export.api import export_model
    from edgezoo.standins import StandinVariant

    rows, summary = [], []
    with tempfile.TemporaryDirectory(prefix="bench-shared-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("EDGEZOO_CACHE", str(root / "cache"))
        dataset = open_dataset(build_standin("coco", root / "coco", count=args.count))
        for spec in args.models.split(","):
            model, variant = spec.split(":")
            bundle = export_model(zoo.get_card(model), "onnx", out_dir=root / "out" / variant, standin=True,
                                  variant=StandinVariant(variant), offline=True).bundle
            tail, meta = bundle_subjects(bundle)
            _timed([tail, meta], dataset, root / "warm-up")  # first-call allocations, caches
            ratios, separate, loop_ratios = [], [], []
            for i in range(args.repeat):
                one, one_loop = _timed([tail], dataset, root / f"one-{model}-{i}")
                both, both_loop = _timed([tail, meta], dataset, root / f"both-{model}-{i}")
                loops = _timed([tail], dataset, root / f"loops-{model}-{i}")[0] + \
                    _timed([meta], dataset, root / f"loops-{model}-{i}")[0]
                equal = _same_files(root / f"loops-{model}-{i}", root / f"both-{model}-{i}")
                ratios.append(both / one)
                separate.append(loops / one)
                loop_ratios.append(both_loop / one_loop)
                rows.append((f"{model} ({variant})", i + 1, f"{one:.1f}", f"{both:.1f}", f"{loops:.1f}",
                             f"{both / one:.2f}", f"{loops / one:.2f}", f"{one_loop:.1f}", f"{both_loop:.1f}",
                             f"{both_loop / one_loop:.2f}", "yes" if equal else "NO"))
            summary.append((f"{model} ({variant})", f"{statistics.median(ratios):.2f}",
                            f"{min(ratios):.2f}-{max(ratios):.2f}", f"{statistics.median(separate):.2f}",
                            f"{statistics.median(loop_ratios):.2f}",
                            f"{min(loop_ratios):.2f}-{max(loop_ratios):.2f}"))
    load = os.getloadavg()
    print(f"ONNX SSD bundle: eval of the tail alone / both subjects in one loop / both in two loops; "
          f"{args.count} stand-in COCO images, {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / "
          f"{load[2]:.1f} at the end\n")
    print(table(("model", "run", "one subject s", "both s", "two loops s", "both / one", "two loops / one",
                 "loop: one s", "loop: both s", "loop: both / one", "files equal"), rows))
    print()
    print(table(("model", "median both / one", "range", "median two loops / one", "median loop: both / one",
                 "range"), summary))


if __name__ == "__main__":
    main()
