"""Hand-made dataset folders for the tests: real photographs (scikit-image) written as JPEGs in MLPerf's layouts."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edgezoo.datasets.images import photographs


def photo_bgr(name: str) -> np.ndarray:
    """A scikit-image photograph as cv2.imread would return it (BGR)."""
    rgb = dict(photographs((name,)))[name]
    return np.ascontiguousarray(rgb[..., ::-1])


def write_jpeg(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def imagenet_folder(root: Path, entries: list[tuple[str, int]], photo: str = "chelsea") -> Path:
    """val_map.txt with `entries` (relative path, label) and a JPEG for each."""
    image = photo_bgr(photo)
    for name, _ in entries:
        write_jpeg(root / name, image)
    (root / "val_map.txt").write_text("".join(f"{name} {label}\n" for name, label in entries))
    return root


def coco_annotations(images: list[dict], annotations: list[dict], categories: list[dict]) -> dict:
    return {"info": {"description": "test"}, "images": images, "annotations": annotations, "categories": categories}


def coco_folder(root: Path, data: dict, photo: str = "coffee") -> Path:
    """annotations/instances_val2017.json = `data`, and a JPEG for each of its images (at the annotated size)."""
    image = photo_bgr(photo)
    for entry in data["images"]:
        write_jpeg(root / "val2017" / entry["file_name"], cv2.resize(image, (entry["width"], entry["height"])))
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return root
