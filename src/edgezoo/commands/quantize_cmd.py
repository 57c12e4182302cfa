"""`edgezoo quantize`: a float bundle -> an int8 bundle (or TIDL preview) with its accuracy cost."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from edgezoo.commands import options
from edgezoo.core.errors import EdgezooError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quantize", help="int8 bundle (TFLite int8, ONNX QDQ) or a TIDL 8-bit preview, with its accuracy cost",
        description="Calibrates on images preprocessed as the bundle's config.yaml says and writes "
                    "<out>/<model>/<scheme>/ with runtime_options.yaml set for it. With --dataset: float vs "
                    "quantized metric, delta and agreement (eval semantics); --max-drop sends a worse bundle to "
                    "<scheme>.failed/ and exits 1. On the preview: --sensitivity ranks layers, --target-drop "
                    "proposes TIDL's 16-bit layer lists.")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="a float bundle folder written by 'edgezoo export'")
    p.add_argument("--calibration", type=Path, required=True, metavar="DIR",
                   help="a folder of images, or a dataset folder (the layouts of 'edgezoo eval')")
    p.add_argument("--frames", metavar="N", help="calibration frames (default 20, TIDL's default)")
    p.add_argument("--scheme", default="tidl-preview", help="tflite-int8 | onnx-qdq | tidl-preview (default)")
    p.add_argument("--power-of-2", action="store_true", help="power-of-2 scales (TIDL quantization_scale_type 1)")
    p.add_argument("--scale-type", metavar="T", help="tidl-preview parameter scales: 0 (TIDL's default), 1, 4")
    p.add_argument("--out", type=Path, help="output root (default: next to the float bundle)")
    p.add_argument("--dataset", type=Path, metavar="DIR", help="ImageNet / COCO folder to measure the cost on")
    p.add_argument("--count", metavar="N", help="score the first N images of --dataset only")
    p.add_argument("--max-drop", metavar="X", help="fail (exit 1) when the metric drops by more than X points")
    p.add_argument("--sensitivity", action="store_true", help="rank layers (SQNR, metric with the layer float)")
    p.add_argument("--target-drop", metavar="X",
                   help="propose the 16-bit layers that bring the drop to X points or less (implies --sensitivity)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    options.add_bundle_check(p)
    options.add_ray(p, "the --dataset passes (float vs quantized, sensitivity, 16-bit search; needs --dataset; "
                       "calibration, one cheap pass, stays local)")
    p.set_defaults(handler=run)


def _points(value: str | None, option: str) -> float | None:
    """A drop in percentage points: a finite number >= 0."""
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        raise EdgezooError(f"{option} {value!r}: not a number", hint=f"e.g. {option} 1.0 (percentage points)") from None
    if not math.isfinite(number) or number < 0 or number > 100:
        raise EdgezooError(f"{option} {number}: out of range (0..100 percentage points)")
    return number


def _choice(value: str, option: str, choices: list[str]) -> str:
    from edgezoo.core.errors import did_you_mean

    if value not in choices:
        raise EdgezooError(f"{option} {value!r}: unknown", hint=did_you_mean(value, choices) + " one of: "
                           + ", ".join(choices))
    return value


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgezoo.quantize import Scheme, quantize_bundle
    from edgezoo.quantize.calibration import DEFAULT_FRAMES
    from edgezoo.quantize.report import render_result, result_json

    scheme = _choice(args.scheme, "--scheme", [s.value for s in Scheme])
    scale_type = None
    if args.scale_type is not None:
        scale_type = int(_choice(str(args.scale_type).strip(), "--scale-type", ["0", "1", "4"]))
    frames = options.positive_int(args.frames, "--frames", maximum=10_000) or DEFAULT_FRAMES
    actors = options.ray_actors(args)
    count = options.positive_int(args.count, "--count")
    result = quantize_bundle(args.bundle, args.calibration, scheme=scheme, frames=frames, out=args.out,
                             power_of_2=args.power_of_2, scale_type=scale_type, dataset=args.dataset,
                             count=count, max_drop=_points(args.max_drop, "--max-drop"),
                             sensitivity=args.sensitivity or args.target_drop is not None,
                             target_drop=_points(args.target_drop, "--target-drop"), ray=args.ray,
                             ray_actors=actors, allow_edited=args.allow_edited_bundle)
    print(result_json(result) if args.json else render_result(result))
    return 0 if result.passed else 1
