"""Figures: ResNet34-SSD1200 -> ONNX + meta_arch.prototxt on the stand-ins.

Usage: .venv/bin/python benchmarks/bench_ssd_resnet34.py [--runs N] [--skip-full]
Prints four tables:
1. stand-in build and `export_model` wall time (reduced and full; a fresh cache in a temp folder);
2. post-processing of the same head outputs: the numpy reference executor (prototxt semantics, 15130 priors x 81
   classes) vs the original model's in-graph tail (decode + softmax + NonMaxSuppression + TopK) in ONNX Runtime,
   as a sub-model cut from the 12 head tensors to bboxes/labels/scores; plus the whole model for scale;
3. parity of the generated prototxt against the model's own detections, per image;
4. TI's documentation sample prototxt against our graph: what the validator says, then (head names mapped by
   position) what the executor gives.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import median_ms

HERE = Path(__file__).parent
TI_SAMPLE = HERE / "data" / "ti_ssd_resnet34_1200_sample.prototxt"


def export_times(variants, out: Path):
    from edgezoo.export.api import export_model
    from edgezoo.fetch import fetch_file
    from edgezoo.standins import StandinVariant
    from edgezoo.zoo import get_card

    card = get_card("ssd-resnet34-1200")
    rows, results = [], {}
    for variant in variants:
        v = StandinVariant(variant)
        t0 = time.perf_counter()
        src = fetch_file(card, "resnet34-ssd1200.onnx", standin=True, variant=v, progress=False)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = export_model(card, "onnx", out_dir=out / variant, standin=True, variant=v)
        export = time.perf_counter() - t0
        results[variant] = (result, Path(src))
        rows.append([variant, f"{src.stat().st_size / 1e6:.1f}", f"{build:.1f}", f"{export:.1f}",
                     "PASS" if result.passed else "FAIL"])
    return rows, results


def postprocess_times(bundle: Path, runs: int):
    import onnx
    import onnxruntime as ort

    from edgezoo.datasets.images import verification_images
    from edgezoo.preprocessing.card import preprocess
    from edgezoo.graphs.runners import load_runner
    from edgezoo.tidl.meta_arch.execute import MetaArchExecutor
    from edgezoo.tidl.meta_arch.prototxt import load_meta_arch
    from edgezoo.zoo import get_card

    ssd = load_meta_arch(bundle / "meta_arch.prototxt").single_ssd()
    heads = list(ssd.box_input) + list(ssd.class_input)
    model_path = bundle / "model.onnx"
    tail_path = bundle.parent / "tail.onnx"
    # The heads' reshape targets come from Shape of the feature maps (as in the published file): the tail reads
    # those too (only their shapes matter).
    graph = onnx.load(model_path).graph
    maps = list(dict.fromkeys(n.input[0] for n in graph.node if n.output and n.output[0] in heads))
    onnx.utils.extract_model(str(model_path), str(tail_path), heads + maps, ["bboxes", "labels", "scores"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    tail = ort.InferenceSession(str(tail_path), opts, providers=["CPUExecutionProvider"])
    runner = load_runner(model_path, outputs=["bboxes", "labels", "scores", *heads, *maps])
    executor = MetaArchExecutor(ssd)
    card = get_card("ssd-resnet34-1200")
    rows = []
    whole_ms = []
    for name, image in verification_images():
        feed = {"image": preprocess(image, card.preprocess)}
        t0 = time.perf_counter()
        out = runner.run(feed)
        whole_ms.append((time.perf_counter() - t0) * 1000)
        boxes = [out[t] for t in ssd.box_input]
        classes = [out[t] for t in ssd.class_input]
        head_feed = {t: out[t] for t in heads + maps}
        t_np = median_ms(lambda: executor(boxes, classes), runs)
        t_dec = median_ms(lambda: executor.decode(boxes, classes), runs)
        t_ort = median_ms(lambda: tail.run(None, head_feed), runs)
        n_det = len(executor(boxes, classes).scores)
        rows.append([name, n_det, f"{t_dec:.1f}", f"{t_np:.1f}", f"{t_ort:.1f}", f"{t_np / t_ort:.2f}"])
    return rows, statistics.median(whole_ms)


def parity_rows(result):
    det = result.report.metrics["detection"]
    rows = [[im["input"], im["original"], im["converted"], im["matched"], f"{im['worst_box_error']:.2e}",
             f"{im['worst_score_error']:.2e}",
             "; ".join(f"{s:.3f} cls {c}" for s, c in im["unmatched_original"]) or "-"]
            for im in det["images"]]
    return rows


def ti_sample(model_path: Path):
    import onnx

    from edgezoo.ssd.onnx_heads import find_heads
    from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, compare_priors
    from edgezoo.tidl.meta_arch.prototxt import load_meta_arch, save_meta_arch
    from edgezoo.tidl.meta_arch.validate import validate_meta_arch
    from edgezoo.verify.meta_arch import verify_with_prototxt
    from edgezoo.zoo import get_card

    card = get_card("ssd-resnet34-1200")
    meta = load_meta_arch(TI_SAMPLE)
    model = onnx.load(model_path)
    problems = validate_meta_arch(meta, model)
    heads = find_heads(model, 81)
    renamed = meta.with_ssd(dataclasses.replace(meta.single_ssd(), box_input=tuple(heads.box_inputs),
                                                class_input=tuple(heads.class_inputs)))
    after = validate_meta_arch(renamed, model)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_meta_arch(renamed, Path(tmp) / "ti_renamed.prototxt")
        report = verify_with_prototxt(model_path, path, card=card, standin=True)
    spec = DefaultBoxSpec.from_params(card.recipe("onnx").params)
    cmp = compare_priors(spec, meta.single_ssd().prior_box_param)
    return problems, after, report, cmp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-full", action="store_true", help="reduced stand-in only (fast)")
    args = ap.parse_args()
    from edgezoo.core.report import render_table

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EDGEZOO_CACHE"] = str(Path(tmp) / "cache")
        variants = ["reduced"] if args.skip_full else ["reduced", "full"]
        rows, results = export_times(variants, Path(tmp) / "out")
        print(f"1. Stand-in build and export (ssd-resnet34 -> onnx), {os.cpu_count()} cores, Python "
              f"{sys.version.split()[0]}")
        print(render_table(["variant", "model MB", "stand-in build s", "export s (convert+prototxt+verify)",
                            "parity"], rows))
        biggest = variants[-1]
        result, source = results[biggest]
        rows, whole = postprocess_times(result.bundle, args.runs)
        print(f"\n2. Post-processing of the same head outputs ({biggest} stand-in, 15130 priors x 81 classes), "
              f"median of {args.runs} runs")
        print(render_table(["image", "detections", "numpy decode ms", "numpy total ms", "ORT in-graph tail ms",
                            "numpy / ORT"], rows))
        print(f"(whole model in ONNX Runtime, heads as extra outputs: median {whole:.0f} ms per image)")
        for variant in variants:
            print(f"\n3. Parity of the generated meta_arch.prototxt vs the model's own detections ({variant})")
            print(render_table(["image", "original", "prototxt", "matched", "worst box err", "worst score err",
                                "unmatched original (score, class)"], parity_rows(results[variant][0])))
        problems, after, report, cmp = ti_sample(result.bundle / "model.onnx")
        print(f"\n4. TI's documentation sample ({TI_SAMPLE.name}) against our graph ({biggest} stand-in)")
        errors = [p for p in problems if p.severity == "error"]
        print(f"validator as written: {len(errors)} errors, {len(problems) - len(errors)} warnings")
        for p in problems[:2] + problems[-1:]:
            print(f"  {p.severity}: {p}")
        print(f"head names mapped by position: {len([p for p in after if p.severity == 'error'])} errors, "
              f"{len([p for p in after if p.severity != 'error'])} warnings")
        for p in after:
            print(f"  {p.severity}: {p}")
        print(f"priors vs MLPerf default boxes: max diff {cmp.max_abs_diff:.4f} ({cmp.where}); "
              f"besides clamping {cmp.max_abs_diff_unclamped:.4f}; {cmp.differing_priors} priors differ")
        print(report.render())


if __name__ == "__main__":
    main()
