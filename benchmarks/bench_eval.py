"""Figures: evaluation throughput, parallel preprocessing, LoadGen, COCO scoring time.

Usage: .venv/bin/python benchmarks/bench_eval.py [--variant full|reduced] [--count N] [--skip-loadgen] [--skip-coco]
Prints four tables (stand-in models exported into a temp folder; stand-in datasets with the builder's own labels):
1. `edgezoo eval`'s loop (decode + MLPerf preprocessing on the pool, inference in order) vs the bare runtime loop
   (the same subject's inference over the same inputs, preprocessed beforehand), images/s and their ratio;
2. the same loop with preprocessing serial (workers=0) vs pooled: the speed-up;
3. LoadGen (real mlperf_loadgen) SingleStream 90th-percentile latency and Offline samples/s, artifact vs original;
4. COCO scoring (pycocotools, as MLPerf's accuracy-coco.py) of a 5,000-image-sized set of detections.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("mobilenet-v1", "resnet50-v1.5", "ssd-mobilenet-v1")


def table(headers, rows) -> str:
    from edgezoo.core.report import render_table

    return render_table(headers, rows)


def subjects_for(model_id: str, variant: str, out: Path):
    """The original and every bundle the card has a recipe for, exported on stand-ins."""
    from edgezoo import zoo
    from edgezoo.evaluation.subjects import bundle_subjects, original_subjects
    from edgezoo.export.api import export_model
    from edgezoo.standins import StandinVariant

    card = zoo.get_card(model_id)
    subjects = original_subjects(card, standin=True, variant=variant, offline=True)
    for target in card.recipes:
        result = export_model(card, target, out_dir=out, standin=True, variant=StandinVariant(variant), offline=True)
        subjects += bundle_subjects(result.bundle)
    return subjects


def short(subject) -> str:
    """'resnet50-v1.5/tflite' rather than the temp folder's path."""
    return subject.what if subject.slug == "original" else f"{subject.card.id}/{subject.slug}"


def throughput(subjects, dataset) -> list[tuple]:
    from edgezoo.datasets import load_image
    from edgezoo.evaluation.engine import default_workers, run_subject

    rows = []
    for s in subjects:
        tensors = [s.preprocess(load_image(x)) for x in dataset.samples]
        s.predict(tensors[0])  # warm-up (first-call allocations)
        t0 = time.perf_counter()
        for i, x in enumerate(tensors):
            s.predict(x, i)
        bare = len(tensors) / (time.perf_counter() - t0)
        pooled = run_subject(s, dataset.samples, load_image, progress=False).images_per_s
        serial = run_subject(s, dataset.samples, load_image, workers=0, progress=False).images_per_s
        rows.append((short(s), s.runtime.value, f"{bare:.1f}", f"{pooled:.1f}", f"{pooled / bare:.2f}",
                     f"{serial:.1f}", f"{pooled / serial:.2f}", default_workers()))
    return rows


def loadgen_rows(subjects, dataset, out: Path) -> list[tuple]:
    from edgezoo.evaluation.loadgen_sut import Scenario, run_loadgen

    rows = []
    for i, s in enumerate(subjects):
        single = run_loadgen(s, dataset, out / f"{i}-ss", scenario=Scenario.SINGLE_STREAM, min_duration_ms=3000,
                             min_query_count=64)
        offline = run_loadgen(s, dataset, out / f"{i}-off", scenario=Scenario.OFFLINE, min_duration_ms=3000,
                              min_query_count=64)
        rows.append((short(s), s.runtime.value, f"{single.figures.get('p90_latency_ns', 0) / 1e6:.2f}",
                     "VALID" if single.valid else "INVALID", f"{offline.figures.get('samples_per_s', 0):.1f}",
                     "VALID" if offline.valid else "INVALID"))
    return rows


def coco_scoring(root: Path, images: int = 5000, per_image: int = 7, seed: int = 0) -> list[tuple]:
    """Ground truth and detections of COCO val2017's size (5,000 images, ~36k boxes; detections = jittered ground
    truth + false positives, ~20 per image), scored with pycocotools as accuracy-coco.py does."""
    import numpy as np

    from edgezoo.datasets import COCO_ANNOTATIONS, DatasetKind, Sample
    from edgezoo.datasets.coco_categories import COCO_CATEGORIES
    from edgezoo.datasets.layout import Dataset
    from edgezoo.evaluation.metrics import coco_map_percent

    rng = np.random.default_rng(seed)
    cats = [c for c, _ in COCO_CATEGORIES]
    gt_images, annotations, samples, records = [], [], [], []
    for i in range(images):
        h, w = int(rng.integers(300, 640)), int(rng.integers(300, 640))
        gt_images.append({"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "height": h, "width": w})
        samples.append(Sample(i, root / f"{i + 1:012d}.jpg", None, i + 1, h, w))
        dets = []
        for _ in range(int(rng.integers(1, 2 * per_image))):
            bw, bh = rng.uniform(10, w / 2), rng.uniform(10, h / 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            cat = int(rng.choice(cats))
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cat,
                                "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0})
            jitter = rng.normal(0, 4, 4)
            dets.append([i, (y + jitter[1]) / h, (x + jitter[0]) / w, (y + bh + jitter[3]) / h,
                         (x + bw + jitter[2]) / w, rng.uniform(0.3, 1.0), cat])
        for _ in range(int(rng.integers(5, 15))):  # false positives
            x0, y0 = rng.uniform(0, 0.8, 2)
            dets.append([i, y0, x0, y0 + 0.1, x0 + 0.1, rng.uniform(0.0, 0.5), int(rng.choice(cats))])
        records.append((i, np.asarray(dets, np.float32)))
    path = root / COCO_ANNOTATIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": gt_images, "annotations": annotations,
                                "categories": [{"id": c, "name": n} for c, n in COCO_CATEGORIES]}))
    dataset = Dataset(DatasetKind.COCO, root, samples, 5000, annotations_path=path, category_ids=cats)
    t0 = time.perf_counter()
    value, score = coco_map_percent(records, dataset, use_inv_map=False)
    seconds = time.perf_counter() - t0
    return [("pycocotools 2.0 (COCOeval bbox)", images, len(annotations), score.detections, f"{seconds:.1f}",
             f"{value:.3f}")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=("full", "reduced"), default="full")
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--skip-loadgen", action="store_true")
    parser.add_argument("--skip-coco", action="store_true")
    args = parser.parse_args()
    from edgezoo.datasets import build_standin, open_dataset

    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("EDGEZOO_CACHE", str(root / "cache"))
        datasets = {kind: open_dataset(build_standin(kind, root / kind, count=args.count))
                    for kind in ("imagenet", "coco")}
        all_subjects = {m: subjects_for(m, args.variant, root / "out") for m in MODELS}
        rows = []
        for model, subjects in all_subjects.items():
            rows += throughput(subjects, datasets[subjects[0].card.labels.dataset])
        print(f"\n1+2. eval loop vs bare runtime loop, {args.count} stand-in images, {args.variant} stand-ins, "
              f"{os.cpu_count()} cores")
        print(table(("what", "runtime", "bare img/s", "eval img/s", "eval/bare", "serial img/s", "pool/serial",
                     "workers"), rows))
        if not args.skip_loadgen:
            rows = []
            for model, subjects in all_subjects.items():
                rows += loadgen_rows(subjects, datasets[subjects[0].card.labels.dataset], root / "loadgen" / model)
            print("\n3. LoadGen (mlperf_loadgen), min_duration 3 s, min_query_count 64")
            print(table(("what", "runtime", "SingleStream p90 ms", "SS result", "Offline samples/s", "Off result"),
                        rows))
        if not args.skip_coco:
            print("\n4. COCO scoring of a 5,000-image-sized set")
            print(table(("scorer", "images", "gt boxes", "detections", "seconds", "mAP %"),
                        coco_scoring(root / "coco5000")))


if __name__ == "__main__":
    main()
