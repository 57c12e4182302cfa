"""`edgezoo export`: fetch + convert + verify + bundle, for zoo models or a user's own graph (export/request.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from edgezoo.commands import options
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="convert + verify + bundle models for a target (TFLite or ONNX)",
        description="Fetch a model's files (or build stand-ins), convert them with the card's recipe, verify parity "
                    "against the original and write the bundle to OUT/<model>/<target>/. A bundle that fails "
                    "verification is written to OUT/<model>/<target>.failed/ and the exit code is 1. "
                    "Own models: --graph FILE --inputs NAME:1x224x224x3 --outputs NAME[,NAME]; own TF OD API SSDs: "
                    "--graph EXPORT_DIR|EXPORT.tar.gz|frozen_inference_graph.pb [--pipeline-config PATH] with the "
                    "SSD options. 'edgezoo info --recipes' lists every route's parameters.")
    options.add_models(p, "every model in the zoo (models without a recipe for the target are skipped with a note)")
    p.add_argument("--to", dest="target", required=True, choices=("tflite", "onnx"), help="target format")
    options.add_out(p, Path("out"))
    options.add_standin(p)
    options.add_sources(p)
    options.add_tolerance(p)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe parameter (value parsed as YAML: simplify=false, batch=1); "
                        "'edgezoo info MODEL' lists each recipe's parameters with types and ranges")
    for name, text in RECIPE_OPTIONS:
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=None, metavar="VALUE", help=text)
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


def parse_params(items: list[str]) -> dict[str, Any]:
    """--param KEY=VALUE items, values read as YAML (the recipe's ParamSpecs type and check them)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise EdgezooError(f"--param {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def run(args: argparse.Namespace) -> int:
    from edgezoo.core.interrupts import report_interrupt, tracking_completed

    planned: list[Any] = []  # the plan, once made: a Ctrl-C's report says how much of it was done
    with tracking_completed() as completed:
        try:
            return _run(args, planned)
        except KeyboardInterrupt:  # completed bundles stand; see edgezoo.core.interrupts
            todo = planned[0] if planned else None
            return report_interrupt(completed, planned=len(todo.jobs) if todo else None,
                                    failed=todo.failed if todo else 0)


def _run(args: argparse.Namespace, planned: list[Any]) -> int:
    # TensorFlow's C++ INFO lines would bury the report; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgezoo.export import report as export_report
    from edgezoo.export.request import ExportRequest, plan, run_plan

    request = ExportRequest(
        target=args.target, models=tuple(args.models), every_model=args.all, graph=args.graph, inputs=args.inputs,
        outputs=args.outputs, pipeline_config=args.pipeline_config, meta_arch=args.meta_arch, out=args.out,
        standin=args.standin, variant=args.standin_variant, mirror=args.mirror, offline=args.offline,
        tolerances=options.tolerances(args), params=parse_params(args.param),
        flags={name: getattr(args, name) for name, _ in RECIPE_OPTIONS if getattr(args, name) is not None},
        ti_package=args.ti_package)
    todo = plan(request)
    planned.append(todo)
    results = run_plan(todo, on_result=_print,
                       on_error=lambda job, exc: print(f"edgezoo: error: {exc}", file=sys.stderr))
    print(export_report.render(results, todo.skipped, standin=args.standin and args.graph is None))
    return 0 if all(r.passed for r in results) and not any(s.failed for s in todo.skipped) else 1


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
