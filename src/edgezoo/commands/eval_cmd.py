"""`edgezoo eval`: accuracy of originals and exported bundles on an ImageNet or COCO folder, side by side."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from edgezoo.core.errors import EdgezooError

MAX_RAY_ACTORS = 4096


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
    add_model_options(p)
    p.add_argument("--count", metavar="N", help="evaluate the first N images only (a subset: no PASS/FAIL)")
    p.add_argument("--out", type=Path, default=Path("evals"), help="output folder (default: evals)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip missing or corrupt images (counted in the table and accuracy.json) instead of stopping")
    add_ray_options(p, "the inference")
    p.set_defaults(handler=run)


def add_ray_options(p: argparse.ArgumentParser, what: str) -> None:
    """--ray / --ray-actors (shared with `quantize`); checked by ray_actors(args)."""
    p.add_argument("--ray", nargs="?", const="auto", metavar="auto|HOST:PORT",
                   help=f"run {what} on Ray actors: 'auto' starts a local Ray for this run, HOST:PORT joins "
                        "a running cluster (models and dataset at the same paths on every node); same results")
    p.add_argument("--ray-actors", metavar="N", help="Ray actors (one CPU each; default: every CPU of the cluster)")


def ray_actors(args: argparse.Namespace) -> int | None:
    """--ray-actors checked, and a bad or unreachable --ray reported before any model is loaded."""
    actors = positive_int(args.ray_actors, "--ray-actors", maximum=MAX_RAY_ACTORS)
    if args.ray is not None:
        from edgezoo.distributed import check_ray_target

        check_ray_target(args.ray)
    elif actors is not None:
        raise EdgezooError("--ray-actors needs --ray", hint="add --ray auto or --ray HOST:PORT")
    return actors


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Where an original model comes from (shared with `bench`)."""
    p.add_argument("--standin", action="store_true",
                   help="originals from stand-in files (built locally, random but realistic weights; no download)")
    p.add_argument("--standin-variant", choices=("full", "reduced"), default="full",
                   help="stand-in size: full (published layer sizes) or reduced (fast)")
    p.add_argument("--mirror", help="a folder or URL holding the published files")
    p.add_argument("--offline", action="store_true", help="never download; use the cache or --mirror only")


def positive_int(value: str | None, option: str, *, maximum: int | None = None) -> int | None:
    """An option's integer value, checked: one clear error instead of a traceback or a silent clamp."""
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise EdgezooError(f"{option} {value!r}: not a whole number", hint=f"e.g. {option} 50") from None
    if number < 1 or (maximum is not None and number > maximum):
        limit = f"1..{maximum:,}" if maximum is not None else ">= 1"
        raise EdgezooError(f"{option} {number}: out of range ({limit})")
    return number


def _card_of(thing: str):
    """The model card THING names: a model id, or a bundle folder's config.yaml session.model_id."""
    from edgezoo import zoo
    from edgezoo.core.errors import UnknownModelError
    from edgezoo.evaluation.subjects import bundle_card

    if Path(thing).exists():
        return bundle_card(Path(thing))
    try:
        return zoo.get_card(thing)
    except UnknownModelError as exc:
        raise EdgezooError(f"{thing!r} is neither a bundle folder nor a model id ({exc.message})",
                           hint=exc.hint or "see 'edgezoo list'") from None


def resolve_subjects(things: list[str], args: argparse.Namespace, dataset: Any) -> list[Any]:
    """Model ids -> original subjects, folders -> bundle subjects (in the order given), each checked against the
    dataset's kind before any model is loaded or built."""
    from edgezoo.datasets import expect_kind
    from edgezoo.evaluation.subjects import bundle_subjects, original_subjects

    cards = [_card_of(thing) for thing in things]
    for thing, card in zip(things, cards):
        expect_kind(dataset, card.labels.dataset, thing)
    subjects = []
    for thing, card in zip(things, cards):
        if Path(thing).exists():
            subjects += bundle_subjects(Path(thing))
        else:
            subjects += original_subjects(card, standin=args.standin, variant=args.standin_variant,
                                          mirror=args.mirror, offline=args.offline)
    return subjects


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgezoo.datasets import open_dataset
    from edgezoo.evaluation.api import evaluate
    from edgezoo.evaluation.report import render_results, results_json

    count = positive_int(args.count, "--count")
    actors = ray_actors(args)
    dataset = open_dataset(args.dataset, count=count, skip_bad=args.skip_bad)
    subjects = resolve_subjects(args.things, args, dataset)
    results = evaluate(subjects, dataset, args.out, skip_bad=args.skip_bad, ray=args.ray, ray_actors=actors)
    print(results_json(results) if args.json else render_results(results))
    return 1 if any(r.passed is False for r in results) else 0
