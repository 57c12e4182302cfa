"""Users' own SSDs, family by family, through `export --graph` with default options: what each route gives.

Usage: .venv/bin/python benchmarks/bench_own_ssd_families.py [--only NAME[,NAME]] [--skip-fullsize] [--all-routes]
For every real structure in tests/structures (the exporters' own graphs with seeded weights calibrated on
photographs: TF OD API TF1 and TF2, torchvision, NVIDIA/MLPerf-style PyTorch SSD300), each route it has: the parity
of the converted model against the original's complete output at the original's own limits (matched fraction of the
original's and of the converted detections, worst box error of matched pairs), or the refusal and its reason.
ONNX rows: the prototxt's semantics (what TIDL computes); `model.onnx` own: ONNX Runtime on the rewritten graph;
"vs original unclipped": for an original that clips boxes to the image before NMS (TIDL cannot), the prototxt's
parity against the original with that clip removed (the conversion alone).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # tests.structures; PYTHONPATH may point at another checkout's structures first


def _norm(name: str) -> dict:
    from tests.structures import STRUCTURES
    from tests.structures.build import refill_spec

    spec = refill_spec(STRUCTURES[name])[2]
    return {"mean": [m / spec.scale for m in spec.mean], "scale": [spec.scale / s for s in spec.std]}


def run_one(name: str, route: str, out: Path) -> list[object]:
    from edgezoo.core.errors import EdgezooError
    from edgezoo.export.od_api import export_od_api
    from edgezoo.export.onnx_ssd import export_onnx_ssd
    from tests.structures import STRUCTURES, materialized

    structure = STRUCTURES[name]
    path = materialized(name)
    t0 = time.perf_counter()
    try:
        if structure.family.value in ("nvidia-ssd300", "torchvision"):
            result = export_onnx_ssd(path, out_dir=out, params=_norm(name))
        else:
            result = export_od_api(path, None, route, out_dir=out)
    except EdgezooError as exc:
        reason = exc.message.replace(str(path), name).replace(str(path.parent), name)
        return [structure.family.value, name, route, "-", "-", "-", "-", "-", f"refused: {reason[:90]}",
                f"{time.perf_counter() - t0:.0f}"]
    checks = {c.name: c.value for c in result.report.checks}
    own = checks.get("model_onnx_matched_fraction_of_original", checks.get("onnx_runtime: matched_fraction_of_original"))
    unclipped = result.report.metrics.get("without_the_originals_clipping")
    return [structure.family.value, name, "onnx+prototxt" if route == "onnx" else route,
            int(checks["original_detections"]), f"{checks['matched_fraction_of_original']:.4f} / "
            f"{checks['matched_fraction_of_converted']:.4f}", f"{checks['max_box_error']:.2e}",
            "-" if own is None else f"{own:.4f}",
            "-" if unclipped is None else f"{unclipped['matched_fraction_of_original']:.4f}",
            "PASS" if result.passed else "FAIL", f"{time.perf_counter() - t0:.0f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="structure names, comma-separated")
    ap.add_argument("--skip-fullsize", action="store_true")
    ap.add_argument("--all-routes", action="store_true",
                    help="also the routes a structure's catalogue entry does not list (e.g. TF2 OD API -> ONNX)")
    args = ap.parse_args()
    from edgezoo.core.report import render_table
    from tests.structures import STRUCTURES
    from tests.structures.catalog import available

    names = [n for n in available() if not (args.skip_fullsize and STRUCTURES[n].fullsize)]
    if args.only:
        wanted = set(args.only.split(","))
        names = [n for n in names if n in wanted]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("EDGEZOO_CACHE", str(Path(tmp) / "cache"))
        for name in names:
            routes = {r.value for r in STRUCTURES[name].routes}
            if args.all_routes and not name.endswith(("-raw", "-tflite_graph", "-tflite_savedmodel")):
                routes |= {"tflite", "onnx+prototxt"} if STRUCTURES[name].family.value.startswith("od-api") else set()
            for route in sorted(routes):
                target = "onnx" if route == "onnx+prototxt" else route
                rows.append(run_one(name, target, Path(tmp) / "out" / name))
                print(" | ".join(str(c) for c in rows[-1]), file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} cores; default options (exact defaults), verification on the photographs + 2 random "
          "images")
    print(render_table(["family", "structure", "route", "original dets", "matched orig / conv", "worst box err",
                        "model.onnx own", "vs original unclipped", "parity", "s"], rows))


if __name__ == "__main__":
    main()
