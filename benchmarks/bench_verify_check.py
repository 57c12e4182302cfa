"""Engine figures on the full-size stand-ins: `edgezoo check` and `edgezoo verify` wall time and peak memory.

Usage: .venv/bin/python benchmarks/bench_verify_check.py [--variant full|reduced] [--workdir DIR]
Builds the ResNet50 v1.5 and MobileNet v1 stand-ins (ONNX, frozen graph, TFLite) once into the work folder, then runs
each command as a fresh process (one run each, after the files exist) and prints a table: wall time, peak RSS of the
child, exit code, and the parity / cut figure the command reported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from edgezoo.core.report import render_table
from edgezoo.standins import StandinVariant, get_builder


def _build(workdir: Path, variant: StandinVariant) -> dict[str, Path]:
    files = {"resnet.pb": ("resnet50-pb", "resnet50_v1.pb"), "resnet.onnx": ("resnet50-onnx-opset11", "resnet50_v1.onnx"),
             "mobilenet.tgz": ("mobilenet-v1-tgz", "mobilenet_v1_1.0_224.tgz"),
             "mobilenet.onnx": ("mobilenet-v1-onnx", "mobilenet_v1_1.0_224.onnx")}
    out = {}
    for key, (builder, name) in files.items():
        dest = workdir / name
        if not dest.exists():
            get_builder(builder).build(dest, variant, 0)
        out[key] = dest
    with tarfile.open(out["mobilenet.tgz"]) as tar:
        tar.extractall(workdir, filter="data")
    out["mobilenet.pb"] = workdir / "mobilenet_v1_1.0_224_frozen.pb"
    out["mobilenet.tflite"] = workdir / "mobilenet_v1_1.0_224.tflite"
    return out


# The child reports its own peak RSS on its last stderr line (RUSAGE_CHILDREN would mix all children together).
_WRAPPER = ("import resource, sys\nfrom edgezoo.cli import main\ncode = main(sys.argv[1:])\n"
            "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(code)\n")


def _run(args: list[str]) -> tuple[float, float, int, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *args, "--json"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = next((int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KB")), 0)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        data = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"}
    return wall, peak / 1024, proc.returncode, data


def _figure(data: dict) -> str:
    if "cut" in data:
        return f"cut {', '.join(data['cut']) or '-'}; {len(data['unsupported'])} unsupported"
    if "checks" in data:
        outs = data["metrics"].get("outputs", {})
        worst = max((s["max_abs_error"] for s in outs.values()), default=float("nan"))
        top1 = data["metrics"].get("classification", {}).get("top1_agreement")
        return f"max|err| {worst:.2e}, top1 {top1}" + ("" if data["passed"] else " FAIL")
    return data.get("error", "?")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=("full", "reduced"), default="full")
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="edgezoo-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    f = _build(workdir, StandinVariant(args.variant))
    print(f"stand-ins ({args.variant}) ready in {time.perf_counter() - t0:.1f} s in {workdir}")
    cases = [
        ("check resnet50 onnx", ["check", str(f["resnet.onnx"])]),
        ("check mobilenet onnx", ["check", str(f["mobilenet.onnx"])]),
        ("check mobilenet tflite", ["check", str(f["mobilenet.tflite"])]),
        ("verify resnet50 pb vs onnx", ["verify", str(f["resnet.pb"]), str(f["resnet.onnx"]), "--model", "resnet50"]),
        ("verify mobilenet pb vs tflite", ["verify", str(f["mobilenet.pb"]), str(f["mobilenet.tflite"]),
                                           "--model", "mobilenet"]),
        ("verify mobilenet pb vs onnx", ["verify", str(f["mobilenet.pb"]), str(f["mobilenet.onnx"]),
                                         "--model", "mobilenet"]),
    ]
    rows = []
    for label, cmd in cases:
        wall, peak_mb, code, data = _run(cmd)
        rows.append([label, f"{wall:.1f} s", f"{peak_mb:.0f} MB", code, _figure(data)])
    print(render_table(["command", "wall", "peak RSS", "exit", "figure"], rows))


if __name__ == "__main__":
    main()
