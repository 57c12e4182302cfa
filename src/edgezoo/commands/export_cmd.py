"""`edgezoo export`: fetch + convert + verify + bundle, for zoo models or a user's own graph."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from edgezoo.errors import EdgezooError

# CLI recipe options -> recipe params (the SSD recipes read these).
RECIPE_OPTIONS: tuple[tuple[str, type, str], ...] = (
    ("max_detections", int, "detections kept by the post-processing op"),
    ("nms", str, "NMS flavour: regular | fast"),
    ("score_threshold", float, "score threshold of the post-processing"),
    ("iou_threshold", float, "NMS IoU threshold"),
    ("confidence_threshold", float, "TIDL object_detection:confidence_threshold"),
    ("top_k", int, "TIDL object_detection:top_k"),
    ("keep_top_k", int, "TIDL object_detection:keep_top_k"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="convert + verify + bundle models for a target (TFLite or ONNX)",
        description="Fetch a model's files (or build stand-ins), convert them with the card's recipe, verify parity "
                    "against the original and write the bundle to OUT/<model>/<target>/. A bundle that fails "
                    "verification is written to OUT/<model>/<target>.failed/ and the exit code is 1. "
                    "Own models: --graph FILE --inputs NAME:1x224x224x3 --outputs NAME[,NAME].")
    p.add_argument("models", nargs="*", metavar="MODEL", help="model ids or aliases (see 'edgezoo list')")
    p.add_argument("--all", action="store_true", help="every model in the zoo (models without a recipe for the "
                                                      "target are skipped with a note)")
    p.add_argument("--to", dest="target", required=True, choices=("tflite", "onnx"), help="target format")
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out)")
    p.add_argument("--standin", action="store_true",
                   help="use stand-in files (built locally, random but realistic weights; no download)")
    p.add_argument("--standin-variant", choices=("full", "reduced"), default="full",
                   help="stand-in size: full (published layer sizes) or reduced (fast)")
    p.add_argument("--mirror", help="a folder or URL holding the published files")
    p.add_argument("--offline", action="store_true", help="never download; use the cache or --mirror only")
    p.add_argument("--tolerance", action="append", default=[], metavar="NAME=VALUE",
                   help="override a parity tolerance, e.g. max_abs_error=1e-3 (repeatable)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe parameter (value parsed as YAML: simplify=false, batch=1)")
    for name, kind, text in RECIPE_OPTIONS:
        choices = ("regular", "fast") if name == "nms" else None
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None, choices=choices,
                       help=text)
    p.add_argument("--ti-package", action="store_true",
                   help="also write the bundle in TI's model-zoo package layout (ti_package/: param.yaml, model/, "
                        "artifacts/, and a .tar.gz) for edgeai-gst-apps / edgeai-benchmark")
    g = p.add_argument_group("own model (instead of MODEL)")
    g.add_argument("--graph", type=Path, help="a frozen graph (.pb) or ONNX model to export")
    g.add_argument("--inputs", help="NAME:1x224x224x3[,NAME:SHAPE] (input names and static shapes)")
    g.add_argument("--outputs", help="NAME[,NAME] (output tensors: where the exported model ends)")
    p.set_defaults(handler=run)


def parse_assignments(items: list[str], what: str, *, numeric: bool = False) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise EdgezooError(f"--{what} {item!r}: expected KEY=VALUE")
        if numeric:
            try:
                out[key.strip()] = float(value)
            except ValueError:
                raise EdgezooError(f"--{what} {item!r}: {value!r} is not a number") from None
        else:
            try:
                out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
            except yaml.YAMLError:
                out[key.strip()] = value
    return out


def parse_inputs(text: str | None) -> dict[str, list[int]]:
    """'a:1x224x224x3,b:1x10' -> {'a': [1,224,224,3], 'b': [1,10]} (names may contain ':0')."""
    if not text:
        raise EdgezooError("--graph needs --inputs NAME:SHAPE, e.g. --inputs input:1x224x224x3")
    out: dict[str, list[int]] = {}
    for item in text.split(","):
        name, sep, shape = item.strip().rpartition(":")
        try:
            dims = [int(d) for d in shape.lower().split("x")]
        except ValueError:
            dims = []
        if not sep or not name or not dims or any(d <= 0 for d in dims):
            raise EdgezooError(f"--inputs {item.strip()!r}: expected NAME:DIMxDIMx..., e.g. input:1x224x224x3",
                               hint="shapes must be static and positive")
        out[name] = dims
    return out


def run(args: argparse.Namespace) -> int:
    # TensorFlow's C++ INFO lines would bury the report; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgezoo import export_report
    from edgezoo.standins import StandinVariant

    tolerances = parse_assignments(args.tolerance, "tolerance", numeric=True)
    params = parse_assignments(args.param, "param")
    params.update({name: getattr(args, name) for name, _, _ in RECIPE_OPTIONS if getattr(args, name) is not None})
    if args.graph is not None:
        if args.models or args.all:
            raise EdgezooError("--graph exports one file: give no MODEL and no --all with it")
        from edgezoo.export_graph import export_graph

        if not args.outputs:
            raise EdgezooError("--graph needs --outputs NAME[,NAME]")
        result = export_graph(args.graph, parse_inputs(args.inputs), [o.strip() for o in args.outputs.split(",")
                                                                       if o.strip()],
                              args.target, out_dir=args.out, tolerances=tolerances, params=params,
                              ti_package=args.ti_package)
        _print(result)
        print(export_report.render([result]))
        return 0 if result.passed else 1
    cards = _cards(args)
    variant = StandinVariant(args.standin_variant)
    from edgezoo.recipes import recipe_names

    available = set(recipe_names())
    results, skipped = [], []
    for card in cards:
        spec = next((r for t, r in card.recipes.items() if t.value == args.target), None)
        reason = ""
        if spec is None:
            reason = f"no recipe for {args.target} (card targets: {', '.join(t.value for t in card.recipes) or '-'})"
        elif spec.name not in available:
            reason = f"recipe {spec.name!r} not available in this build"
        if reason:
            if not args.all:
                raise EdgezooError(f"{card.id}: {reason}")
            skipped.append(export_report.SkippedRow(card.id, args.target, reason))
            continue
        try:
            result = _export_one(card, args, variant, params, tolerances)
        except EdgezooError as exc:
            if len(cards) == 1:
                raise
            print(f"edgezoo: error: {exc}", file=sys.stderr)
            skipped.append(export_report.SkippedRow(card.id, args.target, f"error: {exc}", failed=True))
            continue
        _print(result)
        results.append(result)
    print(export_report.render(results, skipped, standin=args.standin))
    return 0 if all(r.passed for r in results) and not any(s.failed for s in skipped) else 1


def _cards(args: argparse.Namespace) -> list[Any]:
    from edgezoo import zoo

    if args.all:
        if args.models:
            raise EdgezooError("give model names or --all, not both")
        return list(zoo.all_cards())
    if not args.models:
        raise EdgezooError("no model given", hint="name one or more models (see 'edgezoo list'), use --all, "
                                                  "or --graph FILE for your own")
    cards = {}
    for name in args.models:
        card = zoo.get_card(name)
        cards.setdefault(card.id, card)
    return list(cards.values())


def _export_one(card: Any, args: argparse.Namespace, variant: Any, params: dict, tolerances: dict) -> Any:
    from edgezoo.export import export_model

    return export_model(card, args.target, out_dir=args.out, standin=args.standin, variant=variant,
                        mirror=args.mirror, offline=args.offline, params=params, tolerances=tolerances,
                        ti_package=args.ti_package)


def _print(result: Any) -> None:
    """One model's report: headline (STAND-IN first when it applies), the parity table, where the bundle is."""
    print(result.headline())
    print(result.report.render())
    for note in result.notes:
        if note not in result.report.notes:
            print(f"note: {note}")
    if not result.passed:
        print(f"parity FAILED: {result.report.failure_summary()}; bundle kept for inspection at {result.bundle}")
    print()
