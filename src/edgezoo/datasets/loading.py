"""Open a dataset folder (layout detection, validation, MLPerf's order) and decode its images as MLPerf does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgezoo.core.errors import DatasetError
from edgezoo.datasets.coco import read_annotations
from edgezoo.datasets.imagenet import read_val_map
from edgezoo.datasets.layout import (COCO_ANNOTATIONS, COCO_IMAGES, FULL_SIZE, KIND_OF_LABELS, STANDIN_MARKER,
                                     VAL_MAP, Dataset, DatasetKind, Sample)

SKIP_HINT = "restore it, or pass --skip-bad to leave out missing and corrupt images (they are counted)"
_LAYOUTS = (f"ImageNet: {VAL_MAP} with lines 'relative/path.JPEG label' (label 0..999), images under the folder; "
            f"COCO: {COCO_ANNOTATIONS.as_posix()} (COCO instances JSON) and the images under {COCO_IMAGES}/")


def detect_kind(root: Path) -> DatasetKind:
    """Which layout `root` has; DatasetError saying which file is missing and what it must contain."""
    root = Path(root)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise DatasetError(f"dataset {root} {what}",
                           hint=f"point --dataset at a folder in MLPerf's layout ({_LAYOUTS})")
    has_imagenet = (root / VAL_MAP).is_file()
    has_coco = (root / COCO_ANNOTATIONS).is_file()
    if has_imagenet and has_coco:
        raise DatasetError(f"dataset {root} has both {VAL_MAP} and {COCO_ANNOTATIONS.as_posix()}: which one is meant "
                           f"is unclear", hint="keep ImageNet and COCO in separate folders")
    if has_imagenet:
        return DatasetKind.IMAGENET
    if has_coco:
        return DatasetKind.COCO
    raise DatasetError(f"dataset {root} is neither ImageNet nor COCO in MLPerf's layout: no {VAL_MAP} and no "
                       f"{COCO_ANNOTATIONS.as_posix()}", hint=_LAYOUTS)


def open_dataset(root: Path, *, count: int | None = None, skip_bad: bool = False) -> Dataset:
    """Open an ImageNet or COCO folder in MLPerf's layout, samples in qsl order.

    count: the first `count` images present (as MLPerf's --count), None for all. A listed image that is missing is a
    DatasetError naming it; with skip_bad it is left out and recorded in `Dataset.skipped` instead (the other
    samples keep their qsl_idx: see edgezoo.datasets.layout). Images are not decoded here: load_image() reports a
    corrupt one when it is read.
    """
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise DatasetError(f"count must be a whole number >= 1, got {count!r}", hint="omit it to use every image")
    root = Path(root)
    kind = detect_kind(root)
    dataset = Dataset(kind=kind, root=root, samples=[], full_size=FULL_SIZE[kind],
                      standin=(root / STANDIN_MARKER).is_file())
    if kind is DatasetKind.IMAGENET:
        dataset.index_file = root / VAL_MAP
        listed = read_val_map(root, dataset.index_file)
    else:
        dataset.index_file = dataset.annotations_path = root / COCO_ANNOTATIONS
        coco = read_annotations(root, dataset.annotations_path)
        dataset.category_ids = coco.category_ids
        listed = coco.samples
    for sample, where in listed:
        if count is not None and len(dataset.samples) >= count:
            break
        if not sample.path.is_file():
            if not skip_bad:
                raise DatasetError(f"image {sample.path} (listed at {where}) is missing", hint=SKIP_HINT)
            dataset.skipped.append(sample.path.relative_to(root).as_posix())
            continue
        dataset.samples.append(sample)
    if not listed:
        raise DatasetError(f"dataset {root}: {dataset.index_file.name} lists no images", hint=_LAYOUTS)
    if not dataset.samples:
        raise DatasetError(f"dataset {root}: none of the {len(listed)} listed images exists",
                           hint="is the folder complete? images are looked up relative to it")
    return dataset


def load_image(sample: Sample) -> np.ndarray:
    """The image as cv2.imread returns it (BGR uint8 HxWx3, grayscale files too): what MLPerf's loaders feed to
    their preprocessing. DatasetError naming the file when it is missing, cannot be decoded, or is a truncated JPEG
    (libjpeg would decode that with grey filler and only a warning, which MLPerf accepts silently)."""
    import cv2  # lazy: OpenCV is heavy

    path = Path(sample.path)
    if not path.is_file():
        raise DatasetError(f"image {path} is missing", hint=SKIP_HINT)
    if _truncated_jpeg(path):
        raise DatasetError(f"image {path} is a truncated JPEG (no end-of-image marker)", hint=SKIP_HINT)
    image = cv2.imread(str(path))
    if image is None or image.size == 0:
        raise DatasetError(f"image {path} cannot be decoded (corrupt or not an image)", hint=SKIP_HINT)
    return image


# A JPEG ends with the EOI marker FF D9; encoders and copies may pad after it, so the tail is searched, not the end.
# Entropy-coded data never holds FF D9 (an FF there is always followed by 00 or a restart marker).
_JPEG_START, _JPEG_END, _JPEG_TAIL = b"\xff\xd8", b"\xff\xd9", 4096


def _truncated_jpeg(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            if handle.read(2) != _JPEG_START:
                return False  # not a JPEG: the decoder judges it
            size = handle.seek(0, 2)
            handle.seek(max(2, size - _JPEG_TAIL))
            return _JPEG_END not in handle.read()
    except OSError as exc:
        raise DatasetError(f"image {path} cannot be read: {exc.strerror}", hint=SKIP_HINT) from None


def expect_kind(dataset: Dataset, labels_dataset: str, what: str) -> None:
    """DatasetError when `what` (a model whose card says labels.dataset = `labels_dataset`) cannot be scored on
    `dataset` (a classifier on COCO, a detector on ImageNet)."""
    wanted = KIND_OF_LABELS.get(labels_dataset)
    if wanted is not dataset.kind:
        raise DatasetError(f"{what} is scored on {labels_dataset}, but {dataset.root} is a {dataset.kind.value} "
                           f"dataset", hint=f"pass a {labels_dataset} folder as --dataset")
