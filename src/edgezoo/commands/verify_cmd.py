"""`edgezoo verify ORIGINAL CONVERTED`: parity between any two models (.pb, .onnx, .tflite)."""

from __future__ import annotations

import argparse
import json
import sys

from edgezoo.commands import options
from edgezoo.core.errors import EdgezooError
from edgezoo.verify import tolerances

# Each random image is 320 x 400 x 3 bytes before preprocessing and every one is held in memory with its feeds:
# 1024 is plenty for a parity check (the photographs come on top) and bounds the raw images at 375 MiB.
MAX_RANDOM = 1024
MAX_SEED = 2**64 - 1  # numpy's seed range is unbounded, but a seed is recorded and compared: keep it a uint64


def _tolerance_list(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in values.items())


_EPILOG = f"""\
Inputs: the scikit-image sample photographs plus --random seeded images. With --model, preprocessing, output roles,
label offset and tolerances come from that card. Without it (default): images are resized directly to the model's
input size (224x224 when dynamic), RGB, scaled to [-1, 1] ((x - 127.5) / 127.5), fed NHWC or NCHW as each model's
input shape says; uint8 inputs get the resized pixels. Outputs are paired by name (':0' ignored; a converted output
that is an internal tensor of the original, e.g. the logits of a cut model, is read from the original), then by
shape.
Tolerances (--tolerance NAME=VALUE) depend on the task:
  classification / tensors: {_tolerance_list(tolerances.DEFAULT_TOLERANCES)};
    optional: {", ".join(tolerances.OPTIONAL_TOLERANCES)}
  detection (--task detection, a detection card, or --prototxt):
    {_tolerance_list(tolerances.DETECTION_TOLERANCES)}
  each in its range: errors finite and >= 0, cosine in [-1, 1], fractions and agreements in [0, 1], match_iou
  in (0, 1]; anything else is exit 2.
With --prototxt, ORIGINAL may be a frozen graph (.pb), an ONNX or a TFLite detector with its own post-processing;
each model is fed in its own input layout and dtype.
Exit codes: 0 parity holds, 1 a tolerance is exceeded, 2 bad input."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="parity between an original model and its conversion",
                       description="Feed the original and the converted model the same inputs and compare outputs.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("original", metavar="ORIGINAL", help="the reference model (.pb, .onnx or .tflite)")
    p.add_argument("converted", metavar="CONVERTED", nargs="?",
                   help="the converted model (.pb, .onnx or .tflite); with --prototxt it may be omitted: "
                        "ORIGINAL's heads are decoded with the prototxt and compared with ORIGINAL's own outputs")
    p.add_argument("--task", choices=("classification", "detection", "tensors"),
                   help="what to compare (default: the card's task, else guessed from the outputs)")
    p.add_argument("--model", metavar="CARD_ID", help="use this zoo card's preprocessing, labels and tolerances")
    options.add_tolerance(p, "max_abs_error=1e-4 or, for detection, match_iou=0.8 (names below)")
    p.add_argument("--pair", action="append", default=[], metavar="ORIGINAL=CONVERTED",
                   help="compare this original tensor with this converted output (repeatable)")
    p.add_argument("--outputs", metavar="NAME[,NAME]", help="compare only these converted outputs")
    p.add_argument("--prototxt", metavar="FILE",
                   help="detection: check CONVERTED (an ONNX cut at the SSD heads) decoded with this TIDL "
                        "meta-architecture prototxt against ORIGINAL's own detections")
    p.add_argument("--within-limits", action="store_true",
                   help="detection: compare only within the converted model's own score threshold and detection "
                        "count (a conversion made with smaller limits on purpose, e.g. TI's speed settings); the "
                        "report states what that leaves out of the original's output. Without it, detections the "
                        "original keeps and the converted limits drop count as unmatched")
    p.add_argument("--random", type=int, default=2, metavar="N",
                   help=f"seeded random images besides the photos (0..{MAX_RANDOM})")
    p.add_argument("--seed", type=int, default=0, help="seed of the random images (>= 0)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(handler=run)


def _key_values(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise EdgezooError(f"--{what} {item!r}: expected NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def check_counts(count_random: int, seed: int) -> None:
    """--random and --seed in range, before any model is loaded or image made."""
    if not 0 <= count_random <= MAX_RANDOM:
        raise EdgezooError(f"--random {count_random}: expected 0..{MAX_RANDOM} images",
                           hint="each is held in memory with its preprocessed feeds; the photographs are always used")
    if not 0 <= seed <= MAX_SEED:
        raise EdgezooError(f"--seed {seed}: expected an integer in [0, 2^64 - 1]")


def render_details(report) -> str:
    """Per-output error statistics and the classification figures, under the check table."""
    from edgezoo.core.report import fmt_number, render_table

    lines = []
    outputs = report.metrics.get("outputs") or {}
    if outputs:
        rows = [[name, s["original"], s["max_abs_error"], s["max_rel_error"], s["mean_abs_error"], s["cosine"],
                 s["sqnr_db"]] for name, s in outputs.items()]
        lines.append(render_table(["output", "original", "max abs", "max rel", "mean abs", "cosine", "SQNR dB"],
                                  rows))
    top = report.metrics.get("classification")
    if top:
        lines.append(f"classification: {top['compared']}; {top['images']} inputs, "
                     f"{top['distinct_top1']} distinct top-1")
        for d in top["disagreements"]:
            lines.append(f"  top-1 differs on {d['input']}: original {d['original']}, converted {d['converted']}")
    if report.inputs:
        lines.append("inputs: " + ", ".join(report.inputs))
    if not report.passed:
        lines.append("smallest tolerances that would pass: " + ", ".join(
            f"{c.name} {'<=' if c.kind == 'max' else '>='} {fmt_number(c.value)}" for c in report.failures()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    card = None
    if args.model:
        from edgezoo import zoo

        card = zoo.get_card(args.model)
    tolerances = options.tolerances(args)
    check_counts(args.random, args.seed)
    pairs = _key_values(args.pair, "pair")
    outputs = [o.strip() for o in args.outputs.split(",") if o.strip()] if args.outputs else None
    if args.prototxt and args.task not in (None, "detection"):
        raise EdgezooError(f"--prototxt checks detections, not --task {args.task}",
                           hint="drop --task or give --task detection")
    if args.converted is None and not args.prototxt:
        raise EdgezooError("verify needs ORIGINAL and CONVERTED",
                           hint="give two model files, or one ONNX model with --prototxt FILE")
    original = Path(args.original)
    converted = Path(args.converted) if args.converted else original
    chosen = {"--within-limits": True} if args.within_limits else None
    if args.prototxt:
        from edgezoo.verify import meta_arch as meta_verify

        report = meta_verify.verify_with_prototxt(converted, Path(args.prototxt), original=original, card=card,
                                                  tolerances=tolerances, count_random=args.random, seed=args.seed,
                                                  chosen=chosen)
    else:
        from edgezoo.verify.engine import verify_models

        report = verify_models(original, converted, card=card, task=args.task, tolerances=tolerances,
                               pairs=pairs or None, converted_outputs=outputs, count_random=args.random,
                               seed=args.seed, chosen=chosen)
    from edgezoo.bundle.provenance import is_standin

    if is_standin(original) or is_standin(converted):
        report.standin = True
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
        details = render_details(report)
        if details:
            print(details)
    if not report.passed:
        print(f"edgezoo: verification failed: {report.failure_summary()}", file=sys.stderr)
        return 1
    return 0
