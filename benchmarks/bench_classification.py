"""Figures: classification export on the FULL-size stand-ins, side by side with the bare converter.

Usage: .venv/bin/python benchmarks/bench_classification.py [--variant full|reduced] [--runs N]

Per model and target, each measured run is a fresh child process (so peak memory is that run's own: ru_maxrss of the
child from os.wait4). Inside the child, TensorFlow / ONNX / ORT / LiteRT are imported before the clock starts, for
both sides, so the timings compare the work, not the imports. Stand-ins are built (and cached) before timing.

- export: `edgezoo.export.api.export_model` = convert + verify (6 images through original and converted) + bundle;
- bare:   what a user runs by hand on the same input file, without any verification:
          resnet50 -> tflite: TFLiteConverter.from_frozen_graph (the plain converter call);
          * -> onnx: onnx.load, batch dim set to 1, infer_shapes, onnx.utils.Extractor to the cut the export chose;
          mobilenet -> tflite: the published .tflite is used as is, so the bare step is a file copy.
Parity figures come from the export's own report: max abs error on the logits (for mobilenet -> tflite, the
published TFLite ends in softmax: its logits are read inside it and reported without a tolerance) and top-1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = (("resnet50-v1.5", "tflite"), ("resnet50-v1.5", "onnx"), ("mobilenet-v1", "tflite"), ("mobilenet-v1", "onnx"))


# ------------------------------------------------------------------------------------------------ child side
def _preload() -> None:
    import ai_edge_litert.interpreter  # noqa: F401
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
    import tensorflow  # noqa: F401
    import tf2onnx  # noqa: F401


def _child_export(model: str, target: str, variant: str, out: Path) -> dict:
    from edgezoo import zoo
    from edgezoo.export.api import export_model
    from edgezoo.standins import StandinVariant

    t0 = time.perf_counter()
    r = export_model(zoo.get_card(model), target, out_dir=out, standin=True, variant=StandinVariant(variant),
                     offline=True)
    seconds = time.perf_counter() - t0
    logits_err = None
    for name, stats in r.report.metrics.get("outputs", {}).items():
        if "Predictions" not in name and "softmax" not in name:
            logits_err = stats["max_abs_error"]
    for name, stats in r.report.metrics.get("informational", {}).items():
        if name.startswith("logits"):
            logits_err = stats["max_abs_error"]
    cls = r.report.metrics.get("classification", {})
    return {"seconds": seconds, "passed": r.passed, "size": r.model_file.size, "cut": r.cut,
            "logits_max_abs": logits_err, "top1": cls.get("top1_agreement"), "top5": cls.get("top5_overlap"),
            "distinct_top1": cls.get("distinct_top1"), "images": cls.get("images"),
            "sources": [x["path"] for x in json.loads((r.bundle / "manifest.json").read_text())["sources"]],
            "notes": r.notes}


def _child_bare(model: str, target: str, source: str, cut: list[str], out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if target == "tflite" and model.startswith("resnet50"):
        import tensorflow as tf

        converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            source, ["input_tensor"], ["resnet_model/dense/BiasAdd"], input_shapes={"input_tensor": [1, 224, 224, 3]})
        (out / "model.tflite").write_bytes(converter.convert())
    elif target == "tflite":
        shutil.copyfile(source, out / "model.tflite")
    else:
        import onnx

        m = onnx.load(source)
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
        m = onnx.shape_inference.infer_shapes(m)
        inputs = [i.name for i in m.graph.input if i.name not in {x.name for x in m.graph.initializer}]
        m = onnx.utils.Extractor(m).extract_model(inputs, cut)
        onnx.save(m, out / "model.onnx")
    return {"seconds": time.perf_counter() - t0}


def child_main(argv: list[str]) -> None:
    mode, model, target, variant, out, extra = argv
    _preload()
    if mode == "export":
        result = _child_export(model, target, variant, Path(out))
    else:
        info = json.loads(extra)
        result = _child_bare(model, target, info["source"], info["cut"], Path(out))
    print("RESULT " + json.dumps(result))


# ------------------------------------------------------------------------------------------------ parent side
def _run_child(args: list[str], env: dict) -> tuple[dict, float]:
    """(the child's JSON result, its peak RSS in MB)."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"child {args[:3]} failed (exit {proc.returncode}): {out[-2000:]}")
    return json.loads(line[len("RESULT "):]), usage.ru_maxrss / 1024


def _prebuild(variant: str, env: dict) -> float:
    code = ("from edgezoo import zoo, fetch\nfrom edgezoo.standins import StandinVariant\n"
            f"v = StandinVariant({variant!r})\n"
            "for cid in ('resnet50-v1.5', 'mobilenet-v1'):\n"
            "    card = zoo.get_card(cid)\n"
            "    for f in card.files:\n"
            "        fetch.fetch_file(card, f.name, standin=True, variant=v, progress=False)\n")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=("full", "reduced"), default="full")
    parser.add_argument("--runs", type=int, default=1, help="runs per side (median reported)")
    parser.add_argument("--cache", help="stand-in cache to use (default: a fresh temporary one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-classification-"))
    env = dict(os.environ, EDGEZOO_CACHE=args.cache or str(work / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    build = _prebuild(args.variant, env)
    print(f"stand-ins ({args.variant}) built in {build:.0f} s (not part of the timings below)", flush=True)
    rows = []
    for model, target in CASES:
        exports, bares = [], []
        for k in range(args.runs):
            res, rss = _run_child(["export", model, target, args.variant, str(work / f"out{k}"), "{}"], env)
            exports.append((res, rss))
        # The bare side starts from the same file: the .pb (resnet -> tflite), the published .tflite member
        # (mobilenet -> tflite), the .onnx (-> onnx).
        suffix = ".onnx" if target == "onnx" else (".pb" if model.startswith("resnet50") else ".tflite")
        source = next(p for p in exports[0][0]["sources"] if p.endswith(suffix))
        info = {"source": source, "cut": exports[0][0]["cut"]}
        for k in range(args.runs):
            res, rss = _run_child(["bare", model, target, args.variant, str(work / f"bare{k}"), json.dumps(info)], env)
            bares.append((res, rss))
        e = statistics.median(r["seconds"] for r, _ in exports)
        b = statistics.median(r["seconds"] for r, _ in bares)
        first = exports[0][0]
        rows.append([model, target, f"{first['size'] / 1e6:.1f}", f"{e:.1f}", f"{b:.2f}",
                     "n/a (copy)" if suffix == ".tflite" else f"{e / b:.1f}x",
                     f"{max(r for _, r in exports):.0f}", f"{max(r for _, r in bares):.0f}",
                     _fmt(first["logits_max_abs"], ".2e"),
                     f"{first['top1']:.0%} ({first['distinct_top1']}/{first['images']} distinct)",
                     "PASS" if first["passed"] else "FAIL"])
        print(f"  {model} -> {target}: export {e:.1f} s, bare {b:.2f} s", file=sys.stderr, flush=True)
    from edgezoo.core.report import render_table

    print(f"Classification export vs bare converter, {args.variant} stand-ins, median of {args.runs} run(s), "
          f"{os.cpu_count()} cores")
    print(render_table(["model", "target", "MB", "export s", "bare s", "overhead", "export peak MB",
                        "bare peak MB", "logits max|err|", "top-1 agreement", "parity"], rows))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
