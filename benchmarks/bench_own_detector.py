"""Figures: users' own TF OD API SSDs -> TFLite and ONNX + prototxt, on the stand-in variants.

Usage: .venv/bin/python benchmarks/bench_own_detector.py [--variants classes3,fpn,...]
For every stand-in variant (standins/od_api_ssd.py: 3 and 20 classes, 320x320, non-square, reduce_boxes false,
SOFTMAX + logit_scale, FPN multiscale) and both targets, `export_od_api` end to end (structure discovery, anchors
checked against the graph, conversion, parity on 4 photographs + 2 seeded images) and prints one table:
export time, detections matched (of the original's / of the converted's), worst box and score error of matched
pairs, the anchors' difference from the graph's own tensor and (ONNX) the Caffe priors' difference from the anchors.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgezoo.export.od_api import export_od_api
    from edgezoo.core.report import render_table
    from edgezoo.standins.od_api_ssd import VARIANTS, write_export

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated stand-in variants")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(f"bench_own_detector: unknown variant {unknown[0]}; have: {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgezoo-bench-odapi-") as tmp:
        for name in names:
            v = VARIANTS[name]
            t0 = time.monotonic()
            folder = write_export(v, Path(tmp) / "src" / name)
            built = time.monotonic() - t0
            for target in ("tflite", "onnx"):
                t0 = time.monotonic()
                result = export_od_api(folder, None, target, out_dir=Path(tmp) / "out", standin=True)
                seconds = time.monotonic() - t0
                r = result.report
                checks = {c.name: c.value for c in r.checks}
                figures = r.metrics.get("surgery") or r.metrics.get("route") or {}
                det = r.metrics["detection"]
                prior = figures.get("priors_max_abs_diff_vs_tf_anchors")
                rows.append([
                    name, f"{v.num_classes}", f"{v.size[0]}x{v.size[1]}", target, f"{built:.1f}", f"{seconds:.1f}",
                    f"{figures.get('anchors', '-')}",
                    f"{det['total_matched']}/{det['total_original']} ({checks['matched_fraction_of_original']:.1%})",
                    f"{det['total_matched']}/{det['total_converted']} ({checks['matched_fraction_of_converted']:.1%})",
                    f"{checks['max_box_error']:.2g}", f"{checks['max_score_error']:.2g}",
                    f"{figures.get('anchors_max_abs_diff_vs_graph', '-')}",
                    "-" if prior is None else f"{prior:.2g}", "PASS" if result.passed else "FAIL"])
    headers = ["variant", "classes", "input", "target", "build s", "export s", "anchors", "matched of original",
               "matched of converted", "worst box", "worst score", "anchors vs graph", "priors vs anchors", ""]
    print(render_table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
