"""Datasets and scoring at full size: opening ImageNet (50,000 lines) / COCO (5,000 images), decoding + MLPerf
preprocessing per model, writing/reading the accuracy log, COCO mAP on 5,000 images.

Usage: .venv/bin/python benchmarks/bench_datasets.py [--runs N]
The full-size folders are made of hard links to stand-in JPEGs (val_map.txt / annotations at real sizes); one
thread, no pool: these are the per-image costs the evaluation engine parallelises.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import median_ms

from edgezoo.core.report import render_table
from edgezoo.datasets import build_standin, load_image, open_dataset
from edgezoo.evaluation.accuracy_log import read_accuracy_log, write_accuracy_log
from edgezoo.evaluation.metrics import coco_map_percent
from edgezoo.preprocessing.mlperf import mlperf_preprocess

MODELS = ("resnet50-v1.5", "mobilenet-v1", "ssd-mobilenet-v1", "ssd-resnet34-1200")


def _full_imagenet(standin: Path, root: Path) -> Path:
    lines = (standin / "val_map.txt").read_text().splitlines()
    (root / "val").mkdir(parents=True)
    out = []
    for i in range(50_000):
        name, label = lines[i % len(lines)].split()
        target = f"val/ILSVRC2012_val_{i + 1:08d}.JPEG"
        os.link(standin / name, root / target)
        out.append(f"{target} {label}\n")
    (root / "val_map.txt").write_text("".join(out))
    return root


def _full_coco(standin: Path, root: Path, per_image: int = 7) -> Path:
    data = json.loads((standin / "annotations" / "instances_val2017.json").read_text())
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, annotations = [], []
    for i in range(5_000):
        src = data["images"][i % len(data["images"])]
        entry = {**src, "id": 1 + 3 * i, "file_name": f"{1 + 3 * i:012d}.jpg"}
        os.link(standin / "val2017" / src["file_name"], root / "val2017" / entry["file_name"])
        images.append(entry)
        for k in range(per_image):  # ~36,000 boxes as in val2017
            w, h = entry["width"] / (k + 2), entry["height"] / (k + 2)
            annotations.append({"id": len(annotations) + 1, "image_id": entry["id"], "category_id": 1 + k,
                                "bbox": [k * 3.0, k * 2.0, w, h], "area": w * h, "iscrowd": 0})
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({**data, "images": images, "annotations": annotations}))
    return root


def _detections(dataset, rng) -> list[tuple[int, np.ndarray]]:
    """20 detections per image: 7 near the ground truth, 13 elsewhere (as an SSD's output above its threshold)."""
    records = []
    for s in dataset.samples:
        rows = []
        for k in range(20):
            w, h = 1 / (k % 7 + 2), 1 / (k % 7 + 2)
            x, y = (k % 7) * 3.0 / s.width, (k % 7) * 2.0 / s.height
            if k >= 7:
                x, y = rng.uniform(0, 0.5, 2)
            jitter = rng.normal(0, 0.01, 4)
            rows.append([s.index, y + jitter[0], x + jitter[1], y + h + jitter[2], x + w + jitter[3],
                         rng.uniform(0.3, 1), 1 + k % 7])
        records.append((s.index, np.array(rows, np.float32).reshape(-1)))
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-datasets-") as tmp:
        tmp = Path(tmp)
        imagenet_standin = build_standin("imagenet", tmp / "si", count=32)
        coco_standin = build_standin("coco", tmp / "sc", count=32)
        imagenet = _full_imagenet(imagenet_standin, tmp / "imagenet")
        coco = _full_coco(coco_standin, tmp / "coco")
        rows.append(("open_dataset ImageNet (50,000 lines)",
                     f"{median_ms(lambda: open_dataset(imagenet), args.runs):.0f} ms"))
        rows.append(("open_dataset COCO (5,000 images, 35,000 boxes)",
                     f"{median_ms(lambda: open_dataset(coco), args.runs):.0f} ms"))

        samples = open_dataset(imagenet_standin).samples
        images = [load_image(s) for s in samples]
        decode = median_ms(lambda: [load_image(s) for s in samples], args.runs) / len(samples)
        rows.append((f"load_image (stand-in JPEGs, ~{int(np.mean([i.shape[0] for i in images]))} px high)",
                     f"{decode:.2f} ms/image"))
        for model in MODELS:
            per_image = median_ms(lambda: [mlperf_preprocess(i, model) for i in images], args.runs) / len(images)
            rows.append((f"mlperf_preprocess {model}", f"{per_image:.2f} ms/image ({1000 / per_image:.0f}/s)"))

        ds_imagenet = open_dataset(imagenet)
        labels = [(s.index, np.array([s.label], np.float32)) for s in ds_imagenet.samples]
        log = tmp / "imagenet.json"
        rows.append(("write_accuracy_log 50,000 classification records",
                     f"{median_ms(lambda: write_accuracy_log(log, labels), args.runs):.0f} ms"))
        rows.append(("read_accuracy_log 50,000 classification records",
                     f"{median_ms(lambda: read_accuracy_log(log), args.runs):.0f} ms"))
        ds_coco = open_dataset(coco)
        detections = _detections(ds_coco, rng)
        log = tmp / "coco.json"
        rows.append(("write_accuracy_log 5,000 detection records (20 boxes each)",
                     f"{median_ms(lambda: write_accuracy_log(log, detections), args.runs):.0f} ms "
                     f"({log.stat().st_size / 1e6:.1f} MB)"))
        t0 = time.perf_counter()
        value, score = coco_map_percent(detections, ds_coco, use_inv_map=False)
        rows.append(("coco_map_percent 5,000 images, 100,000 detections (pycocotools)",
                     f"{time.perf_counter() - t0:.1f} s (mAP {value:.3f} %)"))
    print(render_table(("what", "time"), rows))


if __name__ == "__main__":
    main()
