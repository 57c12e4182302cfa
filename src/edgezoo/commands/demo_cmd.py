"""`edgezoo demo` (what `make demo` runs): every zoo model to every target its card has a recipe for, on stand-ins,
offline, with one summary table; then the accuracy of each original and its bundles on stand-in datasets (one
table, as `edgezoo eval` prints it). Exit 1 when any parity check fails."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

from edgezoo.commands import options
from edgezoo.core.errors import EdgezooError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline for the zoo on stand-ins, offline",
                       description="Exports every model of the zoo to every target its card has a recipe for, "
                                   "on stand-in files (built locally, random but realistic weights; no network), "
                                   "verifies each against its original and prints one summary table.")
    p.add_argument("--standin-variant", choices=("full", "reduced"), default="full",
                   help="full = published layer sizes (minutes); reduced = narrow layers (seconds)")
    options.add_out(p, Path("out"))
    p.add_argument("--no-eval", action="store_true",
                   help="skip the accuracy part (stand-in datasets + 'edgezoo eval' of originals and bundles)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # TensorFlow's C++ INFO lines would bury the report; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgezoo import zoo
    from edgezoo.export import report as export_report
    from edgezoo.export.api import export_model
    from edgezoo.standins import STANDIN_BANNER, StandinVariant

    variant = StandinVariant(args.standin_variant)
    print(f"{STANDIN_BANNER}: edgezoo demo on stand-in files ({variant.value} variant; random weights, not the "
          f"published models), offline, into {args.out}", flush=True)
    results, skipped = [], []
    t0 = time.monotonic()
    for card in zoo.all_cards():
        for target, spec in card.recipes.items():
            print(f"-- {card.id} -> {target.value} ({spec.name})", file=sys.stderr, flush=True)
            try:
                result = export_model(card, target, out_dir=args.out, standin=True, variant=variant, offline=True)
            except EdgezooError as exc:
                print(f"edgezoo: error: {card.id} -> {target.value}: {exc}", file=sys.stderr)
                skipped.append(export_report.SkippedRow(card.id, target.value, f"error: {exc}", failed=True))
                continue
            except Exception as exc:  # a bug in one recipe must not hide the other models' results
                traceback.print_exc(file=sys.stderr)
                skipped.append(export_report.SkippedRow(card.id, target.value,
                                                        f"internal error: {type(exc).__name__}: {exc}", failed=True))
                continue
            if not result.passed:
                print(result.report.render(), file=sys.stderr)
            results.append(result)
    print(export_report.render(results, skipped, standin=True))
    eval_failed = not args.no_eval and not _accuracy(results, args.out, variant)
    if not args.no_eval:
        eval_failed = not _quantization(results, args.out) or eval_failed
    print(f"total {time.monotonic() - t0:.0f} s")
    return 0 if all(r.passed for r in results) and not any(s.failed for s in skipped) and not eval_failed else 1


def _accuracy(results: list, out: Path, variant: object) -> bool:
    """Accuracy of the originals and the exported bundles on stand-in datasets; False on an error."""
    from edgezoo.evaluation.demo import demo_evaluations
    from edgezoo.evaluation.report import render_results

    print(f"\naccuracy on stand-in datasets labelled by each original model (detectors also under TI's semantics); "
          f"results in {out / 'evals'}", flush=True)
    try:
        evaluated = demo_evaluations(results, out, variant)
    except EdgezooError as exc:
        print(f"edgezoo: error: accuracy: {exc}", file=sys.stderr)
        return False
    print(render_results(evaluated))
    if any(r.metric == "mAP" for r in evaluated):
        # Not a conversion error: parity above holds; the ground truth here is the original's own (clipped) boxes.
        print("note: an SSD artifact's MLPerf row differs from its original's because TFLite_Detection_PostProcess / "
              "TIDL's caffe_ssd do not clip boxes to the image as the OD API graph does; TI rows feed and score "
              "original and artifact with TI's arithmetic (boxes clipped), so their delta is the conversion's own. "
              "TI's and MLPerf's figures differ from each other on random stand-in weights (docs/TI_CONFIG.md)")
    return True


def _quantization(results: list, out: Path) -> bool:
    """One classifier through `edgezoo quantize --scheme tidl-preview`; False on an error."""
    from edgezoo.quantize.demo import DEMO_MODEL, demo_quantization
    from edgezoo.quantize.report import render_result

    print(f"\n8-bit preview (edgezoo quantize, TIDL scheme simulated) of {DEMO_MODEL} on its stand-in dataset",
          flush=True)
    try:
        result = demo_quantization(results, out)
    except EdgezooError as exc:
        print(f"edgezoo: error: quantize: {exc}", file=sys.stderr)
        return False
    print(render_result(result) if result else f"(no {DEMO_MODEL} ONNX bundle or dataset: skipped)")
    return True
