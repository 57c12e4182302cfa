"""COCO's annotations/instances_val2017.json, read as MLPerf reads it, validated so pycocotools cannot trip later.

qsl order = the order of the "images" list (python/coco.py walks it; tools/accuracy-coco.py indexes it with
qsl_idx). Each image's height/width come from its entry: scoring turns normalised boxes into pixels with them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from edgezoo.core.errors import DatasetError
from edgezoo.datasets.layout import COCO_IMAGES, Sample

_HINT = ("a COCO instances file has 'images' [{id, file_name, height, width}], 'annotations' "
         "[{id, image_id, category_id, bbox [x, y, w, h], area}] and 'categories' [{id, name}]")


@dataclass(frozen=True)
class CocoIndex:
    samples: list[tuple[Sample, str]]  # (sample, where it is described) in the "images" order
    category_ids: list[int]  # in file order, as COCO.getCatIds() returns them


def read_annotations(root: Path, path: Path) -> CocoIndex:
    """The samples and category ids of an instances file; DatasetError naming the entry when it is not COCO."""
    try:
        with path.open("rb") as handle:
            data = json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a COCO annotations file: not valid JSON ({exc})", hint=_HINT) from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror}") from None
    if not isinstance(data, Mapping):
        raise DatasetError(f"{path}: not a COCO annotations file: the top level is not an object", hint=_HINT)
    images = _list(data, "images", path)
    categories = _list(data, "categories", path)
    annotations = _list(data, "annotations", path)
    category_ids = [_int(c, "id", f"{path}: categories[{i}]") for i, c in enumerate(categories)]
    if len(set(category_ids)) != len(category_ids):
        raise DatasetError(f"{path}: not a COCO annotations file: category ids repeat", hint=_HINT)
    samples, image_ids = [], set()
    for i, image in enumerate(images):
        where = f"{path}: images[{i}]"
        sample = _sample(root, image, i, where)
        if sample.image_id in image_ids:
            raise DatasetError(f"{where}: image id {sample.image_id} repeats", hint=_HINT)
        image_ids.add(sample.image_id)
        samples.append((sample, where))
    known_categories = set(category_ids)
    for i, ann in enumerate(annotations):
        _check_annotation(ann, f"{path}: annotations[{i}]", image_ids, known_categories)
    return CocoIndex(samples, category_ids)


def _list(data: Mapping[str, Any], key: str, path: Path) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise DatasetError(f"{path}: not a COCO annotations file: no {key!r} list", hint=_HINT)
    return value


def _int(entry: Any, key: str, where: str, *, positive: bool = False) -> int:
    value = entry.get(key) if isinstance(entry, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or (positive and value <= 0):
        kind = "a positive whole number" if positive else "a whole number"
        raise DatasetError(f"{where}: {key!r} must be {kind}, got {value!r}", hint=_HINT)
    return value


def _sample(root: Path, image: Any, index: int, where: str) -> Sample:
    image_id = _int(image, "id", where)
    name = image.get("file_name")
    if not isinstance(name, str) or not name:
        raise DatasetError(f"{where}: 'file_name' must be a file name, got {name!r}", hint=_HINT)
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise DatasetError(f"{where}: file_name {name!r} must be relative to {COCO_IMAGES}/, without '..'")
    height = _int(image, "height", where, positive=True)
    width = _int(image, "width", where, positive=True)
    return Sample(index=index, path=root / COCO_IMAGES / relative, label=None, image_id=image_id,
                  height=height, width=width)


def _check_annotation(ann: Any, where: str, image_ids: set[int], categories: set[int]) -> None:
    _int(ann, "id", where)
    if _int(ann, "image_id", where) not in image_ids:
        raise DatasetError(f"{where}: image_id {ann['image_id']} is not in 'images'", hint=_HINT)
    if _int(ann, "category_id", where) not in categories:
        raise DatasetError(f"{where}: category_id {ann['category_id']} is not in 'categories'", hint=_HINT)
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_finite(v) for v in bbox) and min(bbox[2:]) >= 0):
        raise DatasetError(f"{where}: 'bbox' must be [x, y, width, height] with width, height >= 0, got {bbox!r}",
                           hint=_HINT)
    if not _finite(ann.get("area")):  # COCOeval compares areas against its small/medium/large ranges
        raise DatasetError(f"{where}: 'area' must be a number, got {ann.get('area')!r}", hint=_HINT)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
