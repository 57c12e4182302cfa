"""`edgezoo check FILE --target tidl`: the operators a target cannot run, and the cut that keeps the rest on it."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="which operators TIDL cannot run, and where to cut the graph",
                       description="List every node the target cannot run (with the reason) and propose the cut: "
                                   "the tensors where the largest target-runnable part connected to the inputs "
                                   "ends. A report: exit 0 whatever it finds; 2 for an unreadable file.")
    p.add_argument("file", metavar="FILE", help="an .onnx or .tflite model")
    p.add_argument("--target", choices=("tidl",), default="tidl", help="the accelerator to check for")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgezoo.tidl.check import check_model

    report = check_model(Path(args.file), args.target)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render())
    return 0
