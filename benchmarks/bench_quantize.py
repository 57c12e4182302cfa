"""Figures: `edgezoo quantize` per zoo model on stand-ins and stand-in datasets labelled by the original.

Usage: .venv/bin/python benchmarks/bench_quantize.py [--variant full|reduced] [--count N] [--frames N]
       [--models a,b] [--sensitivity-model mobilenet-v1]
Prints three tables:
1. per model and scheme: calibration time (quantization included), float vs int8 metric, delta, agreement;
2. the TIDL preview's per-layer sensitivity on one model: predicted drop, the 16-bit set proposed for a target;
3. model size and median latency (1 and 2 threads; LiteRT for .tflite, ONNX Runtime for .onnx) float vs int8.
Stand-in weights: the drops say nothing about the published models' drops (RESULTS.md puts TI's figures beside).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

from timing import median_ms  # noqa: E402

SCHEMES = {  # model -> [(float target, scheme, options)]
    "mobilenet-v1": [("tflite", "tflite-int8", {}), ("onnx", "onnx-qdq", {}),
                     ("onnx", "onnx-qdq", {"power_of_2": True}), ("onnx", "tidl-preview", {"scale_type": 4}),
                     ("onnx", "tidl-preview", {"scale_type": 0})],
    "resnet50-v1.5": [("tflite", "tflite-int8", {}), ("onnx", "onnx-qdq", {}),
                      ("onnx", "tidl-preview", {"scale_type": 4})],
    "ssd-mobilenet-v1": [("tflite", "tflite-int8", {}), ("onnx", "onnx-qdq", {}),
                         ("onnx", "tidl-preview", {"scale_type": 4})],
}


def table(headers, rows) -> str:
    from edgezoo.core.report import render_table

    return render_table(headers, rows)


def prepare(model_id: str, variant: str, count: int, out: Path) -> tuple[dict[str, Path], Path]:
    from edgezoo import zoo
    from edgezoo.datasets import build_standin
    from edgezoo.evaluation.standin_labels import model_labeller
    from edgezoo.evaluation.subjects import original_subjects
    from edgezoo.export.api import export_model
    from edgezoo.standins import StandinVariant

    card = zoo.get_card(model_id)
    targets = {t for t, _, _ in SCHEMES[model_id]}
    bundles = {t: export_model(card, t, out_dir=out, standin=True, variant=StandinVariant(variant),
                               offline=True).bundle for t in targets}
    (original,) = original_subjects(card, standin=True, variant=variant, offline=True)
    data = build_standin(card.labels.dataset, out / "datasets" / model_id, count=count,
                         labeller=model_labeller(original))
    return bundles, data


def latency(path: Path, threads: int) -> float:
    import numpy as np

    if path.suffix == ".tflite":
        from edgezoo.graphs import tflite_model

        interp = tflite_model.load_interpreter(path, num_threads=threads)
        detail = interp.get_input_details()[0]
        x = np.zeros(detail["shape"], detail["dtype"])

        def run():
            interp.set_tensor(detail["index"], x)
            interp.invoke()
    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        info = session.get_inputs()[0]
        x = np.zeros([d if isinstance(d, int) else 1 for d in info.shape],
                     np.uint8 if "uint8" in info.type else np.float32)

        def run():
            session.run(None, {info.name: x})
    return median_ms(run, 10)


def main() -> None:
    from edgezoo.quantize import quantize_bundle

    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="full", choices=("full", "reduced"))
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--models", default=",".join(SCHEMES))
    parser.add_argument("--sensitivity-model", default="mobilenet-v1")
    parser.add_argument("--target-drop", type=float, default=10.0)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="edgezoo-bench-quant-"))
    cost_rows, size_rows, sens_lines = [], [], []
    for model_id in args.models.split(","):
        bundles, data = prepare(model_id, args.variant, args.count, out)
        for target, scheme, options in SCHEMES[model_id]:
            sensitivity = model_id == args.sensitivity_model and scheme == "tidl-preview" \
                and options.get("scale_type") == 4
            result = quantize_bundle(bundles[target], data, scheme=scheme, frames=args.frames, dataset=data,
                                     target_drop=args.target_drop if sensitivity else None, **options)
            float_score, quant_score = result.scores
            label = f"{scheme} (type {result.scale_type})"
            cost_rows.append((model_id, label, f"{result.calibration_seconds:.1f}", float_score.metric,
                              f"{float_score.value:.2f}", f"{quant_score.value:.2f}", f"{quant_score.delta:+.2f}",
                              f"{quant_score.agreement:.1f}"))
            if sensitivity:
                worst = result.sensitivity[:3]
                p = result.sixteen_bit
                sens_lines.append(f"{model_id} preview type 4: drop {-quant_score.delta:.2f} points; worst layers "
                                  + "; ".join(f"{r.name} (SQNR {r.sqnr_db} dB, +{r.gain})" for r in worst)
                                  + f"; 16-bit set for drop <= {p.target_drop}: {len(p.names)} layer(s), measured "
                                  f"drop {p.drop} ({'reached' if p.reached else 'not reached'}): "
                                  + ", ".join(p.names))
            if scheme != "tidl-preview":
                float_model = next(bundles[target].glob("model.*"))
                int8_model = next(Path(result.bundle).glob("model.*"))
                size_rows.append((model_id, label, f"{float_model.stat().st_size / 1e6:.1f}",
                                  f"{int8_model.stat().st_size / 1e6:.1f}",
                                  *(f"{latency(p, t):.1f}" for p in (float_model, int8_model) for t in (1, 2))))
    print(f"STAND-IN models ({args.variant}), stand-in datasets of {args.count} images labelled by the original, "
          f"{args.frames} calibration frames (from the same dataset)")
    print(table(("model", "scheme", "calib s", "metric", "float %", "int8 %", "delta", "agreement %"), cost_rows))
    print("\n".join(sens_lines))
    print(table(("model", "scheme", "float MB", "int8 MB", "float 1T ms", "float 2T ms", "int8 1T ms",
                 "int8 2T ms"), size_rows))


if __name__ == "__main__":
    main()
