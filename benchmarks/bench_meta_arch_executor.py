"""The numpy reference of TIDL's detection layer (tidl/meta_arch/execute.py) at scale, against its baselines.

Usage: .venv/bin/python benchmarks/bench_meta_arch_executor.py [--runs N] [--fpn-classes K]
Prints two tables, every ratio measured in this run on this machine:
1. ResNet34-SSD1200 (REDUCED stand-in, 15130 priors x 81 classes, the bundle `export` writes): per photograph, the
   prototxt's decoding in numpy (decode + all-classes selection) against the model's own in-graph tail in ONNX
   Runtime (a sub-model from the 12 head tensors to bboxes/labels/scores, 2 threads), and against the per-class
   loop the executor used before (whose outputs the fast one must equal bit for bit);
2. FPN scale (an SSD FPN 640's 51,150 priors x 91 columns, sigmoid, confidence 1e-8 and top_k = every prior as
   the exact defaults write them, keep_top_k 100): the selection over all classes at once, against the per-class
   loop timed on --fpn-classes classes and scaled to 90 (the whole loop takes minutes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import median_ms


def resnet34_rows(out: Path, runs: int) -> list[list[object]]:
    import onnx
    import onnxruntime as ort

    from edgezoo.export.api import export_model
    from edgezoo.datasets.images import verification_images
    from edgezoo.preprocessing.card import preprocess
    from edgezoo.graphs.runners import load_runner
    from edgezoo.standins import StandinVariant
    from edgezoo.tidl.meta_arch.execute import MetaArchExecutor
    from edgezoo.tidl.meta_arch.prototxt import load_meta_arch
    from edgezoo.zoo import get_card

    card = get_card("ssd-resnet34-1200")
    result = export_model(card, "onnx", out_dir=out, standin=True, variant=StandinVariant.REDUCED)
    bundle = result.bundle
    ssd = load_meta_arch(bundle / "meta_arch.prototxt").single_ssd()
    heads = list(ssd.box_input) + list(ssd.class_input)
    model_path = bundle / "model.onnx"
    tail_path = out / "tail.onnx"
    graph = onnx.load(model_path).graph
    maps = list(dict.fromkeys(n.input[0] for n in graph.node if n.output and n.output[0] in heads))
    onnx.utils.extract_model(str(model_path), str(tail_path), heads + maps, ["bboxes", "labels", "scores"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    tail = ort.InferenceSession(str(tail_path), opts, providers=["CPUExecutionProvider"])
    runner = load_runner(model_path, outputs=[*heads, *maps])
    executor = MetaArchExecutor(ssd)
    rows = []
    for name, image in verification_images():
        out_heads = runner.run({"image": preprocess(image, card.preprocess)})
        boxes = [out_heads[t] for t in ssd.box_input]
        classes = [out_heads[t] for t in ssd.class_input]
        head_feed = {t: out_heads[t] for t in heads + maps}
        fast = executor(boxes, classes)
        slow = executor.select_per_class(*executor.decode(boxes, classes))
        same = all(np.array_equal(getattr(fast, f), getattr(slow, f)) for f in ("boxes_xyxy", "labels", "scores"))
        t_fast = median_ms(lambda: executor(boxes, classes), runs)
        t_slow = median_ms(lambda: executor.select_per_class(*executor.decode(boxes, classes)), runs)
        t_ort = median_ms(lambda: tail.run(None, head_feed), runs)
        rows.append([name, len(fast.scores), f"{t_fast:.1f}", f"{t_slow:.1f}", f"{t_ort:.1f}",
                     f"{t_fast / t_ort:.2f}", f"{t_slow / t_ort:.2f}", "yes" if same else "NO"])
    return rows


def fpn_scale(classes_timed: int, seed: int = 0) -> list[list[object]]:
    """Synthetic heads shaped like an OD API SSD FPN 640 (five levels 80..5, 6 anchors): realistic sigmoid logits
    (most well below 0, a few confident boxes per class), boxes jittered around their anchors."""
    from edgezoo.tidl.meta_arch.execute import MetaArchExecutor
    from edgezoo.tidl.meta_arch.prototxt import (CaffeSsd, CodeType, DataLayout, DetectionOutputParam, NmsParam,
                                                 PriorBoxParam, ScoreConverter)

    rng = np.random.default_rng(seed)
    grids = (80, 40, 20, 10, 5)
    n = sum(6 * g * g for g in grids)
    columns = 91
    boxes, cells = [], []
    for g in grids:
        c = (np.arange(g) + 0.5) / g
        cy, cx = np.meshgrid(c, c, indexing="ij")
        size = 4.0 / g
        for _ in range(6):
            centre = np.stack([cx.ravel(), cy.ravel()], axis=1) + rng.normal(0, 0.2 / g, (g * g, 2))
            wh = size * np.exp(rng.normal(0, 0.3, (g * g, 2)))
            boxes.append(np.concatenate([centre - wh / 2, centre + wh / 2], axis=1))
            cells.append(np.full(g * g, g))
    boxes_xyxy = np.concatenate(boxes)
    logits = rng.normal(-7.0, 2.0, (n, columns))
    hot = rng.integers(0, n, 3000)
    logits[hot, rng.integers(1, columns, 3000)] += rng.uniform(4, 12, 3000)
    scores = 1 / (1 + np.exp(-logits))
    prior = PriorBoxParam(min_size=(32.0,), variance=(0.1, 0.1, 0.2, 0.2), step=8.0)
    ssd = CaffeSsd(box_input=("b",), class_input=("c",), output=("o",), in_width=640, in_height=640,
                   score_converter=ScoreConverter.SIGMOID, prior_box_param=(prior,),
                   detection_output_param=DetectionOutputParam(
                       num_classes=columns, background_label_id=0, code_type=CodeType.CENTER_SIZE_YXHW,
                       keep_top_k=100, confidence_threshold=1e-8, nms_param=NmsParam(nms_threshold=0.6, top_k=n)),
                   data_layout=DataLayout.SEPARATED)
    executor = MetaArchExecutor(ssd)
    t0 = time.perf_counter()
    fast = executor.select(boxes_xyxy, scores)
    t_fast = time.perf_counter() - t0
    candidates = int((scores[:, 1:] > 1e-8).sum())
    # the per-class loop on the first classes only (background + K), scaled to all 90
    part = scores.copy()
    part[:, classes_timed + 1:] = 0.0
    t0 = time.perf_counter()
    executor.select_per_class(boxes_xyxy, part)
    t_slow = (time.perf_counter() - t0) * (columns - 1) / classes_timed
    fast_part = executor.select(boxes_xyxy, part)
    slow_part = executor.select_per_class(boxes_xyxy, part)
    same = all(np.array_equal(getattr(fast_part, f), getattr(slow_part, f))
               for f in ("boxes_xyxy", "labels", "scores"))
    return [[f"{n} x {columns}", f"{candidates:,}", len(fast.scores), f"{t_fast:.2f}",
             f"{t_slow:.0f} (measured on {classes_timed} classes, x{(columns - 1) / classes_timed:.0f})",
             f"{t_slow / t_fast:.0f}", "yes" if same else "NO"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fpn-classes", type=int, default=3, help="classes the per-class loop is timed on")
    args = ap.parse_args()
    from edgezoo.core.report import render_table

    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EDGEZOO_CACHE"] = str(Path(tmp) / "cache")
        rows = resnet34_rows(Path(tmp) / "out", args.runs)
    print(f"\n1. ResNet34-SSD1200 (reduced stand-in) post-processing of the same heads, median of {args.runs} runs")
    print(render_table(["image", "detections", "numpy ms", "per-class loop ms", "ORT tail ms", "numpy / ORT",
                        "loop / ORT", "same as loop"], rows))
    ratios = [float(r[5]) for r in rows]
    print(f"numpy / ORT: median {statistics.median(ratios):.2f}, worst {max(ratios):.2f}")
    print("\n2. FPN scale (synthetic heads, confidence 1e-8, top_k every prior, keep_top_k 100), one run")
    print(render_table(["priors x columns", "candidates", "detections", "all classes at once s",
                        "per-class loop s", "speed-up", "same as loop"], fpn_scale(args.fpn_classes)))


if __name__ == "__main__":
    main()
