"""Figures: `export --graph model.onnx --to onnx --meta-arch ssd` on ResNet34-SSD stand-ins.

Usage: .venv/bin/python benchmarks/bench_onnx_ssd.py [--variant reduced|full]
Prints three tables:
1. per stand-in variant (published naming, older numbered naming, boxes in another order, crowded outputs):
   export wall time, detections matched (of original / of converted) for the prototxt and for model.onnx's own
   outputs, worst box and score error;
2. the prior fit per head (the published structure): fitted prior_box_param and its deviation from the graph's
   priors before any rewrite;
3. on the crowded-output stand-in: the parity loss of TI's speed settings (top_k 200, confidence 0.3, both) against
   the exact defaults (every prior, the graph's 0.05), counting ALL of the original's detections.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {"published (node = output names)": {}, "older numbered naming": {"naming": "numbered"},
            "boxes in another order": {"box_order": "interpolated-last"}, "crowded outputs": {"crowded": True}}


def _build(variant: str, kw: dict, folder: Path) -> Path:
    import onnx

    from edgezoo.standins import StandinVariant
    from edgezoo.standins.ssd_resnet34 import build_model

    dest = folder / ("r34-" + "-".join(f"{k}-{v}" for k, v in kw.items()) + ".onnx")
    onnx.save(build_model(StandinVariant(variant), 0, **kw), dest)
    return dest


def _norm() -> dict:
    from edgezoo.zoo import get_card

    pre = get_card("ssd-resnet34-1200").preprocess
    return {"mean": list(pre.mean), "scale": list(pre.scale)}


def main(argv: list[str]) -> int:
    from edgezoo.export.onnx_ssd import export_onnx_ssd
    from edgezoo.core.report import render_table

    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=("reduced", "full"), default="reduced")
    args = ap.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-onnx-ssd-"))
    rows, models = [], {}
    for label, kw in VARIANTS.items():
        model = _build(args.variant, kw, folder)
        models[label] = model
        inputs = {"image": [1, 3, 1200, 1200]} if kw.get("naming") == "numbered" else None
        t0 = time.perf_counter()
        result = export_onnx_ssd(model, inputs=inputs, out_dir=folder / "out", params=_norm())
        seconds = time.perf_counter() - t0
        c = {ch.name: ch.value for ch in result.report.checks}
        rows.append([label, f"{seconds:.1f}", int(c["original_detections"]),
                     f"{c['matched_fraction_of_original']:.4f} / {c['matched_fraction_of_converted']:.4f}",
                     f"{c['model_onnx_matched_fraction_of_original']:.4f}",
                     f"{c['max_box_error']:.2g}", f"{c['max_score_error']:.2g}", "PASS" if result.passed else "FAIL"])
    print(f"`--meta-arch ssd` export per stand-in variant ({args.variant}; 3 photographs + 2 seeded random images)")
    print(render_table(["variant", "export s", "original dets", "prototxt matched (orig / conv)",
                        "model.onnx own matched", "worst box err", "worst score err", "parity"], rows))
    print()

    manifest = json.loads((folder / "out" / models["published (node = output names)"].stem / "onnx" /
                           "manifest.json").read_text())
    from edgezoo.tidl.meta_arch.prototxt import load_meta_arch

    ssd = load_meta_arch(folder / "out" / models["published (node = output names)"].stem / "onnx" /
                         "meta_arch.prototxt").single_ssd()
    fit_rows = []
    for k, (p, dev) in enumerate(zip(ssd.prior_box_param, manifest["recipe"]["params"]["priors"]
                                     ["deviation_per_head"])):
        step = p.step if p.step is not None else f"{p.step_h}/{p.step_w}"
        fit_rows.append([k, p.min_size[0], p.max_size[0] if p.max_size else "-",
                         ",".join(f"{r:g}" for r in p.aspect_ratio), p.flip, step, p.effective_offset, f"{dev:.3g}"])
    print("Prior fit per head (published structure): deviation = max |TIDL prior - graph prior| before any rewrite")
    print(render_table(["head", "min_size", "max_size", "ratios", "flip", "step", "offset", "deviation"], fit_rows))
    print()

    crowded = models["crowded outputs"]
    loss_rows = []
    for label, params in (("top_k 200", {"top_k": 200}), ("confidence 0.3", {"confidence_threshold": 0.3}),
                          ("top_k 200 + confidence 0.3", {"top_k": 200, "confidence_threshold": 0.3})):
        result = export_onnx_ssd(crowded, out_dir=folder / "speed" / label.replace(" ", "_"),
                                 params={**_norm(), **params})
        bundle = result.bundle
        loss = json.loads((bundle / "manifest.json").read_text())["recipe"]["params"]["speed_setting_parity"]
        loss_rows.append([label, loss["exact"]["original"], f"{loss['exact']['matched_fraction']:.4f}",
                          f"{loss['chosen']['matched_fraction']:.4f}", loss["chosen"]["converted"],
                          f"{1 - loss['chosen']['matched_fraction']:.2%}"])
    print("Parity loss of TI's speed settings on the crowded-output stand-in (all of the original's detections)")
    print(render_table(["setting", "original dets", "exact defaults matched", "setting matched",
                        "setting dets", "loss"], loss_rows))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main(sys.argv[1:]))
