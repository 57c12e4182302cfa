"""`edgezoo eval`: accuracy of originals and exported bundles on an ImageNet or COCO folder, side by side."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from edgezoo.commands import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="accuracy (top-1 / mAP) of originals and bundles with MLPerf's semantics",
        description="Evaluates each THING (a model id: its original model; or a bundle folder written by "
                    "'edgezoo export') on the dataset with MLPerf's preprocessing and scoring, prints one table "
                    "(the first THING is the reference for the deltas) and writes, per THING, "
                    "OUT/<model>/<what>/{mlperf_log_accuracy.json, accuracy.json[, coco-results.json]}. "
                    "The MLPerf target is judged only on the full dataset.")
    p.add_argument("things", nargs="+", metavar="THING", help="model id (original) or bundle folder")
    p.add_argument("--dataset", type=Path, required=True,
                   help="ImageNet (val_map.txt + images) or COCO (annotations/instances_val2017.json + val2017/)")
    add_original_options(p)
    p.add_argument("--semantics", choices=("mlperf", "ti", "both"), default="mlperf",
                   help="whose arithmetic a bundle is evaluated with: mlperf (MLPerf's reference app, default), ti "
                        "(what TI's edgeai-benchmark computes from the bundle's config.yaml on a PC in float: its "
                        "crop rounding, uint8 resize, box clipping, detection threshold, label map and scoring) or "
                        "both (each THING twice, side by side); an original under ti is fed and scored with TI's "
                        "arithmetic from its card's config, so a bundle's delta is the conversion's own")
    p.add_argument("--count", metavar="N", help="evaluate the first N images only (a subset: no PASS/FAIL)")
    options.add_out(p, Path("evals"))
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip missing or corrupt images (counted in the table and accuracy.json) instead of stopping")
    options.add_ray(p, "the inference")
    p.set_defaults(handler=run)


def add_original_options(p: argparse.ArgumentParser) -> None:
    """Where an original model comes from (shared with `bench`)."""
    options.add_standin(p, "originals from stand-in files")
    options.add_sources(p)
    options.add_bundle_check(p)


def subjects_of(things: list[str], args: argparse.Namespace, dataset: Any) -> list[Any]:
    from edgezoo.evaluation.api import resolve_subjects

    return resolve_subjects(things, dataset, semantics=getattr(args, "semantics", "mlperf"), standin=args.standin,
                            variant=args.standin_variant, mirror=args.mirror, offline=args.offline,
                            allow_edited=args.allow_edited_bundle)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgezoo.datasets import open_dataset
    from edgezoo.evaluation.api import evaluate
    from edgezoo.evaluation.report import render_results, results_json

    count = options.positive_int(args.count, "--count")
    actors = options.ray_actors(args)
    dataset = open_dataset(args.dataset, count=count, skip_bad=args.skip_bad)
    subjects = subjects_of(args.things, args, dataset)
    results = evaluate(subjects, dataset, args.out, skip_bad=args.skip_bad, ray=args.ray, ray_actors=actors)
    print(results_json(results) if args.json else render_results(results))
    return 1 if any(r.passed is False for r in results) else 0
