"""`edgezoo export`: fetch + convert + verify + bundle, for zoo models or a user's own graph."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgezoo.core.errors import EdgezooError

# Recipe options as flags: shortcuts for --param NAME=VALUE, parsed and range-checked by the ParamSpecs of the model's
# recipe like any --param (recipes/params.py); a model whose recipe does not declare one refuses it.
RECIPE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("max_detections", "ssd-mobilenet-v1 / OD API SSD tflite: detections kept by the post-processing op"),
    ("nms", "ssd-mobilenet-v1 / OD API SSD tflite: NMS flavour, regular | fast"),
    ("score_threshold", "ssd-mobilenet-v1 / OD API SSD: score threshold of the post-processing"),
    ("iou_threshold", "ssd-mobilenet-v1 / OD API SSD: NMS IoU threshold"),
    ("confidence_threshold", "ssd-resnet34-1200, --meta-arch ssd: TIDL object_detection:confidence_threshold"),
    ("top_k", "ssd-resnet34-1200, --meta-arch ssd, OD API SSD onnx: TIDL object_detection:top_k "
              "(default: every prior, exact)"),
    ("keep_top_k", "SSD ONNX: TIDL object_detection:keep_top_k"),
)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="convert + verify + bundle models for a target (TFLite or ONNX)",
        description="Fetch a model's files (or build stand-ins), convert them with the card's recipe, verify parity "
                    "against the original and write the bundle to OUT/<model>/<target>/. A bundle that fails "
                    "verification is written to OUT/<model>/<target>.failed/ and the exit code is 1. "
                    "Own models: --graph FILE --inputs NAME:1x224x224x3 --outputs NAME[,NAME]; own TF OD API SSDs: "
                    "--graph EXPORT_DIR|EXPORT.tar.gz|frozen_inference_graph.pb [--pipeline-config PATH] with the "
                    "SSD options.")
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
                   help="override a recipe parameter (value parsed as YAML: simplify=false, batch=1); "
                        "'edgezoo info MODEL' lists each recipe's parameters with types and ranges")
    for name, text in RECIPE_OPTIONS:
        p.add_argument(flag(name), dest=name, default=None, metavar="VALUE", help=text)
    p.add_argument("--ti-package", action="store_true",
                   help="also write the bundle in TI's model-zoo package layout (ti_package/: param.yaml, model/, "
                        "artifacts/, and a .tar.gz) for edgeai-gst-apps / edgeai-benchmark")
    g = p.add_argument_group("own model (instead of MODEL)")
    g.add_argument("--graph", type=Path, help="a frozen graph (.pb) or ONNX model to export")
    g.add_argument("--inputs", help="NAME:1x224x224x3[,NAME:SHAPE] (input names and static shapes)")
    g.add_argument("--outputs", help="NAME[,NAME] (output tensors: where the exported model ends)")
    g.add_argument("--pipeline-config", type=Path, metavar="PATH",
                   help="TF Object Detection API SSD: its pipeline.config (--graph is then the frozen graph, the "
                        "export folder or its .tar.gz; the SSD options apply)")
    g.add_argument("--meta-arch", dest="meta_arch", choices=("ssd",),
                   help="ssd: an ONNX SSD with its decoding in the graph -> model.onnx + TIDL meta_arch.prototxt "
                        "(heads, priors and thresholds read from the graph; --inputs only to fix a symbolic input)")
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
    """'a:1x224x224x3,b:1x10' -> {'a': [1,224,224,3], 'b': [1,10]} (names may contain ':0'), sizes range-checked."""
    from edgezoo.recipes.params import check_shapes

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
    return check_shapes(out, "--inputs")


def _recipe_params(params: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """--param values and recipe flags in one mapping; the same name given both ways is ambiguous."""
    for name in flags:
        if name in params:
            raise EdgezooError(f"{flag(name)} and --param {name} both given", hint="give it once")
    return {**params, **flags}


@dataclass
class _Plan:
    """How many exports this run was asked for and how many ended in an error (for a Ctrl-C's report)."""

    planned: int | None = None
    failed: int = 0


def run(args: argparse.Namespace) -> int:
    from edgezoo.core.interrupts import report_interrupt, tracking_completed

    plan = _Plan()
    with tracking_completed() as completed:
        try:
            return _run(args, plan)
        except KeyboardInterrupt:  # completed bundles stand; see edgezoo.core.interrupts
            return report_interrupt(completed, planned=plan.planned, failed=plan.failed)


def _run(args: argparse.Namespace, plan: _Plan) -> int:
    # TensorFlow's C++ INFO lines would bury the report; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgezoo.export import report as export_report
    from edgezoo.standins import StandinVariant

    tolerances = parse_assignments(args.tolerance, "tolerance", numeric=True)
    params = parse_assignments(args.param, "param")
    flags = {name: getattr(args, name) for name, _ in RECIPE_OPTIONS if getattr(args, name) is not None}
    if args.graph is not None:
        if args.models or args.all:
            raise EdgezooError("--graph exports one file: give no MODEL and no --all with it")
        if args.meta_arch:
            return _export_meta_arch(args, params, flags, tolerances)
        from edgezoo.export.graph import export_graph
        from edgezoo.export.od_api import is_archive

        beside = not (args.inputs or args.outputs) and (args.graph.with_name("pipeline.config").is_file()
                                                        or args.graph.name == "saved_model.pb")
        if args.pipeline_config is not None or args.graph.is_dir() or is_archive(args.graph) or beside:
            return _export_od_api(args, params, flags, tolerances)
        if flags:
            name = next(iter(flags))
            raise EdgezooError(f"{flag(name)} applies to {_takers(name)}, not to --graph",
                               hint="--graph takes --param opset=N, nchw=true (.pb -> onnx) or simplify=true "
                                    "(.onnx -> onnx)")
        if not (args.inputs or args.outputs):
            from edgezoo.export.od_api import refuse_detector_without_route

            refuse_detector_without_route(args.graph)  # a detector file that has its own route says which
        if not args.outputs:
            raise EdgezooError("--graph needs --outputs NAME[,NAME]")
        plan.planned = 1
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
    todo, skipped = [], []
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
        todo.append(card)
    # Every option of every model checked before the first one is fetched, built or converted.
    typed = _validate(todo, args.target, params, flags, every_model=args.all)
    plan.planned = len(todo)
    results = []
    for card in todo:
        try:
            result = _export_one(card, args, variant, typed[card.id], tolerances)
        except EdgezooError as exc:
            if len(cards) == 1:
                raise
            plan.failed += 1
            print(f"edgezoo: error: {exc}", file=sys.stderr)
            skipped.append(export_report.SkippedRow(card.id, args.target, f"error: {exc}", failed=True))
            continue
        _print(result)
        results.append(result)
    print(export_report.render(results, skipped, standin=args.standin))
    return 0 if all(r.passed for r in results) and not any(s.failed for s in skipped) else 1


def _export_od_api(args: argparse.Namespace, params: dict[str, Any], flags: dict[str, Any],
                   tolerances: dict[str, float]) -> int:
    """--graph naming a TF OD API SSD (frozen graph + pipeline.config, export folder or .tar.gz)."""
    from edgezoo.export import report as export_report
    from edgezoo.export.od_api import export_od_api

    if args.inputs or args.outputs:
        raise EdgezooError("--inputs/--outputs do not apply to an OD API SSD (its heads and input are found in the "
                           "graph)", hint="drop them")
    given = _recipe_params(params, flags)
    result = export_od_api(args.graph, args.pipeline_config, args.target, out_dir=args.out, params=given,
                           tolerances=tolerances,
                           origin=lambda n: flag(n) if n in flags else f"--param {n}")
    _print(result)
    print(export_report.render([result]))
    return 0 if result.passed else 1


def _export_meta_arch(args: argparse.Namespace, params: dict[str, Any], flags: dict[str, Any],
                      tolerances: dict[str, float]) -> int:
    """--graph model.onnx --to onnx --meta-arch ssd (export_onnx_ssd); the TIDL threshold flags apply."""
    from edgezoo.export import report as export_report
    from edgezoo.export.onnx_ssd import export_onnx_ssd
    from edgezoo.recipes.onnx_ssd import PARAMS

    if args.target != "onnx":
        raise EdgezooError(f"--meta-arch {args.meta_arch} writes an ONNX model and a prototxt: use --to onnx")
    if args.outputs:
        raise EdgezooError("--meta-arch keeps the model's own outputs: give no --outputs",
                           hint="TIDL runs the graph up to the heads the prototxt names")
    declared = {p.name for p in PARAMS}
    for name in flags:
        if name not in declared:
            raise EdgezooError(f"{flag(name)} does not apply to --meta-arch {args.meta_arch}",
                               hint="it takes: " + ", ".join(flag(n) for n in declared if n in dict(RECIPE_OPTIONS)))
    inputs = parse_inputs(args.inputs) if args.inputs else None
    result = export_onnx_ssd(args.graph, inputs=inputs, out_dir=args.out, tolerances=tolerances,
                             params=_recipe_params(params, flags), meta_arch=args.meta_arch, flags=set(flags))
    _print(result)
    print(export_report.render([result]))
    return 0 if result.passed else 1


def _takers(name: str) -> str:
    """'ssd-mobilenet-v1 (tflite, onnx)': the zoo models whose recipes declare parameter `name`."""
    from edgezoo import zoo
    from edgezoo.recipes import get_recipe, recipe_names

    available = set(recipe_names())
    found = []
    for card in zoo.all_cards():
        targets = [t.value for t, r in card.recipes.items()
                   if r.name in available and any(p.name == name for p in get_recipe(r.name).params)]
        if targets:
            found.append(f"{card.id} ({', '.join(targets)})")
    return ", ".join(found) or "no model"


def _validate(cards: list[Any], target: str, params: dict[str, Any], flags: dict[str, Any], *,
              every_model: bool) -> dict[str, dict[str, Any]]:
    """card id -> the recipe's typed parameters (card's, then --param, then flags); exit 2 on anything invalid.

    Named models: a flag their recipe does not take is an error. --all: each option goes to the recipes that declare
    it; one that no recipe declares is an error.
    """
    from edgezoo.recipes import get_recipe

    given = _recipe_params(params, flags)

    def origin(name: str) -> str:
        return flag(name) if name in flags else f"--param {name}" if name in params else f"the card's {name}"

    out: dict[str, dict[str, Any]] = {}
    declared_anywhere: set[str] = set()
    for card in cards:
        spec = card.recipe(target)
        recipe = get_recipe(spec.name)
        declared = {p.name for p in recipe.params}
        declared_anywhere |= declared
        if every_model:
            mine = {k: v for k, v in given.items() if k in declared}
        else:
            for name in flags:
                if name not in declared:
                    raise EdgezooError(f"{flag(name)} applies to {_takers(name)}, not to {card.id} ({target})",
                                       hint=f"drop it; recipe {spec.name} takes: " + ", ".join(sorted(declared)))
            mine = given
        out[card.id] = recipe.validate({**dict(spec.params), **mine}, card.id, origin)
    unused = [name for name in given if name not in declared_anywhere]
    if every_model and unused and cards:
        takers = f" (it applies to {_takers(unused[0])})" if unused[0] in flags else ""
        raise EdgezooError(f"{origin(unused[0])}: no recipe of the exported models takes it{takers}",
                           hint="'edgezoo info MODEL' lists each recipe's parameters")
    return out


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
    from edgezoo.export.api import export_model

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
