"""Stand-in datasets: a few dozen real photographs in MLPerf's exact ImageNet / COCO layouts, built offline.

The photographs ship inside scikit-image. Each image is a different random crop of one of them, resized to an odd
size, colour-shifted, sometimes mirrored, and JPEG-encoded at varying quality; image 1 is grayscale (MLPerf's
GRAY2RGB path). The labels/boxes are not ImageNet's or COCO's: the dataset root holds STAND-IN.txt (so
Dataset.standin is true) and the COCO annotations say STAND-IN in their "info".

Ground truth: `labeller(image_bgr)` when given, called on each image as load_image() returns it (edgezoo's eval
wires it to a stand-in model, so that an artifact which drops or shifts detections scores measurably lower);
otherwise a model-free fallback: each photograph's own ImageNet class, and its objects' boxes placed by hand on the
source photograph and carried through the crop, resize and mirror.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.core.atomic import replace_folder
from edgezoo.core.errors import DatasetError, disk_full, is_disk_full
from edgezoo.datasets.coco_categories import COCO_CATEGORIES
from edgezoo.datasets.imagenet import NUM_LABELS
from edgezoo.datasets.images import photographs
from edgezoo.datasets.layout import (COCO_ANNOTATIONS, COCO_IMAGES, STANDIN_MARKER, VAL_MAP, DatasetKind)

Box = tuple[float, float, float, float]  # x, y, width, height in pixels
Labeller = Callable[[np.ndarray], Any]  # image_bgr -> ImageNet label, or [(coco category id, [x, y, w, h]), ...]
# Stand-ins are for demos and tests; staying far below the real sizes also means no MLPerf target is ever judged
# on one (a verdict needs the full 50,000 / 5,000 images).
MAX_COUNT = 1000
DEFAULT_COUNT = 32
_GRAYSCALE_INDEX = 1
_IMAGENET_DIR = "val"
_COCO_FIRST_ID, _COCO_ID_STEP = 100_000, 37  # sparse ids, as COCO's: an index used as an id shows up
_MIN_VISIBLE = 0.3  # a hand-placed box less visible than this after the crop is dropped


@dataclass(frozen=True)
class Photo:
    name: str  # skimage.data loader
    imagenet_label: int  # 0-based ImageNet class of the main object
    objects: tuple[tuple[int, Box], ...]  # COCO category id and box on the source photograph
    grayscale: bool = False


PHOTOS = (
    Photo("astronaut", 812, ((1, (20, 15, 345, 497)),)),  # space shuttle in the background; a person
    Photo("coffee", 967, ((47, (170, 15, 245, 290)), (50, (325, 65, 100, 260)))),  # espresso; cup, spoon
    Photo("rocket", 657, ()),  # missile; no COCO object (like COCO's 48 images without annotations)
    Photo("chelsea", 281, ((17, (0, 0, 451, 300)),)),  # tabby; cat
)
GRAYSCALE_PHOTO = Photo("camera", 759, ((1, (0, 65, 335, 447)),), grayscale=True)  # reflex camera; a person


@dataclass(frozen=True)
class _Image:
    bgr: np.ndarray  # as written (before JPEG)
    photo: Photo
    boxes: list[tuple[int, Box]]  # fallback COCO ground truth, on the written image
    quality: int


def build_standin(kind: DatasetKind | str, out: Path, *, count: int = DEFAULT_COUNT, seed: int = 0,
                  labeller: Labeller | None = None) -> Path:
    """Build a STAND-IN dataset at `out` (replacing an earlier stand-in there, never anything else); atomic."""
    kind = _kind(kind)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise DatasetError(f"count must be a whole number from 1 to {MAX_COUNT}, got {count!r}",
                           hint=f"stand-in datasets are small; the default is {DEFAULT_COUNT}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"seed must be a whole number >= 0, got {seed!r}")
    out = Path(out)
    _check_replaceable(out)
    created = _make_parents(out.parent)
    staging = out.parent / f".{out.name}.standin-{uuid.uuid4().hex[:12]}"
    try:
        staging.mkdir()
        images = _images(count, seed)
        if kind is DatasetKind.IMAGENET:
            _write_imagenet(staging, images, labeller)
        else:
            _write_coco(staging, images, labeller)
        (staging / STANDIN_MARKER).write_text(_marker_text(kind, count, seed, labeller), encoding="utf-8")
        _publish(staging, out)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(exc, out.parent, "building the stand-in dataset") from None
        raise DatasetError(f"{out}: cannot write the stand-in dataset: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not out.exists():
            for folder in reversed(created):  # innermost first; only folders this call made
                try:
                    folder.rmdir()
                except OSError:
                    break
    return out


def _kind(kind: DatasetKind | str) -> DatasetKind:
    try:
        return DatasetKind(kind)
    except ValueError:
        raise DatasetError(f"unknown dataset kind {kind!r}",
                           hint="one of: " + ", ".join(k.value for k in DatasetKind)) from None


def _check_replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder", hint="choose another --out")
    if any(out.iterdir()) and not (out / STANDIN_MARKER).is_file():
        raise DatasetError(f"{out} is not empty and not a stand-in dataset: refusing to replace it",
                           hint="choose another --out (an earlier stand-in there would be replaced)")


def _make_parents(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; return those created, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot create the folder: {exc.strerror}",
                           hint="choose a writable --out") from None
    return missing


def _publish(staging: Path, out: Path) -> None:
    replace_folder(staging, out)


def _images(count: int, seed: int) -> list[_Image]:
    sources = dict(photographs(tuple(p.name for p in (*PHOTOS, GRAYSCALE_PHOTO))))
    order = [GRAYSCALE_PHOTO if i == _GRAYSCALE_INDEX else PHOTOS[(i - (i > _GRAYSCALE_INDEX)) % len(PHOTOS)]
             for i in range(count)]
    return [_vary(sources[photo.name], photo, np.random.default_rng([seed, i])) for i, photo in enumerate(order)]


def _vary(rgb: np.ndarray, photo: Photo, rng: np.random.Generator) -> _Image:
    """A random crop (60-100 % of each side), an odd size, a colour shift, maybe a mirror image."""
    import cv2  # lazy: OpenCV is heavy

    height, width = rgb.shape[:2]
    crop_h, crop_w = int(height * rng.uniform(0.6, 1.0)), int(width * rng.uniform(0.6, 1.0))
    top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    long_side = int(rng.integers(90, 261)) * 2 + 1  # odd, 181..521
    scale = long_side / max(crop_h, crop_w)
    new_h, new_w = max(1, int(crop_h * scale)) | 1, max(1, int(crop_w * scale)) | 1
    image = cv2.resize(rgb[top:top + crop_h, left:left + crop_w], (new_w, new_h), interpolation=cv2.INTER_AREA)
    gains = rng.uniform(0.75, 1.25, size=3) * rng.uniform(0.8, 1.2)
    image = np.clip(image.astype(np.float32) * gains + rng.uniform(-20, 20), 0, 255).astype(np.uint8)
    mirror = bool(rng.integers(0, 2))
    if mirror:
        image = image[:, ::-1]
    boxes = []
    for category, (x, y, w, h) in photo.objects:
        x0, y0 = max(x, left), max(y, top)
        x1, y1 = min(x + w, left + crop_w), min(y + h, top + crop_h)
        if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) < _MIN_VISIBLE * w * h:
            continue
        bx, by = (x0 - left) * new_w / crop_w, (y0 - top) * new_h / crop_h
        bw, bh = (x1 - x0) * new_w / crop_w, (y1 - y0) * new_h / crop_h
        boxes.append((category, (new_w - bx - bw if mirror else bx, by, bw, bh)))
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if photo.grayscale else np.ascontiguousarray(image[..., ::-1])
    return _Image(bgr, photo, boxes, quality=int(rng.integers(75, 96)))


def _write_jpeg(path: Path, image: _Image) -> np.ndarray:
    """Encode, write, and return the image as load_image() will read it back (what the labeller must see)."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", image.bgr, [cv2.IMWRITE_JPEG_QUALITY, image.quality])
    if not ok:
        raise DatasetError(f"{path.name}: OpenCV could not encode the JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded.tobytes())
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def _write_imagenet(root: Path, images: Sequence[_Image], labeller: Labeller | None) -> None:
    lines = []
    for i, image in enumerate(images):
        name = f"{_IMAGENET_DIR}/ILSVRC2012_val_{i + 1:08d}.JPEG"
        decoded = _write_jpeg(root / name, image)
        label = image.photo.imagenet_label if labeller is None else _checked_label(labeller(decoded), name)
        lines.append(f"{name} {label}\n")
    (root / VAL_MAP).write_text("".join(lines), encoding="utf-8")


def _checked_label(label: Any, name: str) -> int:
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= int(label) < NUM_LABELS:
        return int(label)
    raise DatasetError(f"stand-in labeller gave {label!r} for {name}: an ImageNet label must be 0..{NUM_LABELS - 1}")


def _write_coco(root: Path, images: Sequence[_Image], labeller: Labeller | None) -> None:
    import json

    entries, annotations = [], []
    for i, image in enumerate(images):
        image_id = _COCO_FIRST_ID + _COCO_ID_STEP * i
        name = f"{image_id:012d}.jpg"
        decoded = _write_jpeg(root / COCO_IMAGES / name, image)
        height, width = decoded.shape[:2]
        entries.append({"id": image_id, "file_name": name, "height": height, "width": width, "coco_url": name})
        objects = image.boxes if labeller is None else _checked_objects(labeller(decoded), name, width, height)
        for category, (x, y, w, h) in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                "bbox": [round(float(v), 2) for v in (x, y, w, h)],
                                "area": round(float(w) * float(h), 2), "iscrowd": 0})
    data = {"info": {"description": "STAND-IN dataset built by edgezoo: not COCO's images or annotations"},
            "images": entries, "annotations": annotations,
            "categories": [{"id": cid, "name": name, "supercategory": "none"} for cid, name in COCO_CATEGORIES]}
    (root / COCO_ANNOTATIONS).parent.mkdir(parents=True, exist_ok=True)
    (root / COCO_ANNOTATIONS).write_text(json.dumps(data), encoding="utf-8")


def _checked_objects(objects: Any, name: str, width: int, height: int) -> list[tuple[int, Box]]:
    known = {cid for cid, _ in COCO_CATEGORIES}
    out = []
    for entry in objects if isinstance(objects, (list, tuple)) else [objects]:
        try:
            category, box = entry
            x, y, w, h = (float(v) for v in box)
            category = int(category)
        except (TypeError, ValueError):
            category, (x, y, w, h) = -1, (0.0, 0.0, 0.0, 0.0)
        if category not in known or w <= 0 or h <= 0 or not np.isfinite([x, y, w, h]).all():
            raise DatasetError(f"stand-in labeller gave {entry!r} for {name} ({width}x{height}): expected "
                               f"(COCO category id, [x, y, width, height]) with a positive size")
        out.append((category, (x, y, w, h)))
    return out


def _marker_text(kind: DatasetKind, count: int, seed: int, labeller: Labeller | None) -> str:
    truth = ("from the labeller given to the builder (a stand-in model)" if labeller is not None
             else "each photograph's own class / hand-placed boxes")
    what = "labels" if kind is DatasetKind.IMAGENET else "boxes"
    return (f"STAND-IN {kind.value} dataset built by edgezoo: {count} images made from scikit-image photographs "
            f"(random crops, odd sizes, colour shifts, one grayscale), seed {seed}.\n"
            f"Its {what} are {truth}, not {kind.value}'s: figures on it show that a pipeline is exact, not what a "
            f"model scores on the real dataset.\n")
