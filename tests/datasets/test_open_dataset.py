"""open_dataset / load_image: MLPerf's layouts and order, and every bad input as one DatasetError naming the place."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgezoo.core.errors import DatasetError
from edgezoo.datasets import DatasetKind, expect_kind, load_image, open_dataset
from tests.datasets.dataset_files import coco_annotations, coco_folder, imagenet_folder, photo_bgr, write_jpeg

ENTRIES = [("val/ILSVRC2012_val_00000001.JPEG", 65), ("val/ILSVRC2012_val_00000002.JPEG", 970),
           ("val/ILSVRC2012_val_00000003.JPEG", 0)]


def _coco(tmp_path, n_images=3):
    images = [{"id": 1000 + 7 * i, "file_name": f"{1000 + 7 * i:012d}.jpg", "height": 90 + i, "width": 120 + 3 * i}
              for i in range(n_images)]
    anns = [{"id": 1, "image_id": images[0]["id"], "category_id": 18, "bbox": [1, 2, 30, 40], "area": 1200,
             "iscrowd": 0}] if images else []
    cats = [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 3, "name": "car"}]
    return coco_folder(tmp_path, coco_annotations(images, anns, cats)), images


def test_imagenet_in_val_map_order(tmp_path):
    imagenet_folder(tmp_path, ENTRIES)
    ds = open_dataset(tmp_path)
    assert ds.kind is DatasetKind.IMAGENET and ds.full_size == 50_000 and not ds.is_full and not ds.standin
    assert [(s.index, s.path, s.label) for s in ds.samples] == [(i, tmp_path / n, lab)
                                                                 for i, (n, lab) in enumerate(ENTRIES)]
    assert open_dataset(tmp_path, count=2).samples == ds.samples[:2]
    assert "3 of 50,000 images (subset)" in ds.describe()


def test_coco_in_images_order_with_sizes_and_category_order(tmp_path):
    root, images = _coco(tmp_path)
    ds = open_dataset(root)
    assert ds.kind is DatasetKind.COCO and ds.full_size == 5_000
    assert [(s.index, s.image_id, s.height, s.width) for s in ds.samples] == \
        [(i, im["id"], im["height"], im["width"]) for i, im in enumerate(images)]
    assert ds.samples[1].path == root / "val2017" / images[1]["file_name"]
    assert ds.category_ids == [1, 18, 3]  # file order, as COCO.getCatIds() gives them (checked below)
    from pycocotools.coco import COCO
    assert ds.category_ids == COCO(str(ds.annotations_path)).getCatIds()


def test_missing_image_is_an_error_or_skipped_keeping_mlperf_indices(tmp_path):
    imagenet_folder(tmp_path, ENTRIES)
    (tmp_path / ENTRIES[1][0]).unlink()
    with pytest.raises(DatasetError, match=r"ILSVRC2012_val_00000002.JPEG.*val_map.txt:2.*missing.*--skip-bad"):
        open_dataset(tmp_path)
    ds = open_dataset(tmp_path, skip_bad=True)
    # qsl_idx stays the val_map line: a log scored by accuracy-imagenet.py against val_map.txt is not shifted.
    assert [s.index for s in ds.samples] == [0, 2] and ds.skipped == [ENTRIES[1][0]]
    assert [s.index for s in open_dataset(tmp_path, count=2, skip_bad=True).samples] == [0, 2]
    assert "1 skipped" in ds.describe()


@pytest.mark.parametrize("line, match", [
    ("val/a.JPEG", r"val_map.txt:2: expected 2 fields, found 1"),
    ("val/a b.JPEG 3", r"val_map.txt:2: expected 2 fields, found 3"),
    ("val/a.JPEG dog", r"val_map.txt:2: label 'dog' is not a whole number"),
    ("val/a.JPEG 1000", r"val_map.txt:2: label 1000 is out of range"),
    ("val/a.JPEG -1", r"val_map.txt:2: label -1 is out of range"),
    ("../a.JPEG 3", r"val_map.txt:2: image path '../a.JPEG' must be relative"),
    ("", r"val_map.txt:2: expected 2 fields, found 0"),
])
def test_val_map_line_that_does_not_parse_names_file_and_line(tmp_path, line, match):
    imagenet_folder(tmp_path, ENTRIES[:1])
    (tmp_path / "val_map.txt").write_text(f"{ENTRIES[0][0]} 1\n{line}\n{ENTRIES[0][0]} 2\n")
    with pytest.raises(DatasetError, match=match):
        open_dataset(tmp_path)


def test_trailing_blank_lines_are_fine(tmp_path):
    imagenet_folder(tmp_path, ENTRIES)
    (tmp_path / "val_map.txt").write_text((tmp_path / "val_map.txt").read_text() + "\n\n")
    assert len(open_dataset(tmp_path)) == 3


def test_folder_that_is_no_layout_says_what_is_missing(tmp_path):
    with pytest.raises(DatasetError, match=r"neither ImageNet nor COCO.*no val_map.txt and no "
                                           r"annotations/instances_val2017.json.*relative/path.JPEG label"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="is not a folder"):
        open_dataset(tmp_path / "file")


@pytest.mark.parametrize("count", [0, -3, 1.5, True, "2"])
def test_count_must_be_a_positive_whole_number(tmp_path, count):
    imagenet_folder(tmp_path, ENTRIES)
    with pytest.raises(DatasetError, match="count must be a whole number >= 1"):
        open_dataset(tmp_path, count=count)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: "not json {", r"not a COCO annotations file: not valid JSON"),
    (lambda d: [1, 2], r"the top level is not an object"),
    (lambda d: {**d, "images": None}, r"no 'images' list"),
    (lambda d: {k: v for k, v in d.items() if k != "categories"}, r"no 'categories' list"),
    (lambda d: {**d, "images": [{**d["images"][0], "height": 0}]}, r"images\[0\]: 'height' must be a positive"),
    (lambda d: {**d, "images": d["images"] + d["images"][:1]}, r"images\[3\]: image id 1000 repeats"),
    (lambda d: {**d, "annotations": [{**d["annotations"][0], "bbox": [1, 2, 3]}]}, r"annotations\[0\]: 'bbox'"),
    (lambda d: {**d, "annotations": [{**d["annotations"][0], "image_id": 5}]}, r"image_id 5 is not in 'images'"),
    (lambda d: {**d, "annotations": [{**d["annotations"][0], "category_id": 99}]}, r"category_id 99 is not in"),
    (lambda d: {**d, "annotations": [{k: v for k, v in d["annotations"][0].items() if k != "area"}]},
     r"'area' must be a number"),
])
def test_annotations_that_are_not_coco(tmp_path, mutate, match):
    root, _ = _coco(tmp_path)
    path = root / "annotations" / "instances_val2017.json"
    changed = mutate(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(DatasetError, match=match):
        open_dataset(root)


def test_no_images_at_all(tmp_path):
    imagenet_folder(tmp_path, ENTRIES[:1])
    (tmp_path / ENTRIES[0][0]).unlink()
    with pytest.raises(DatasetError, match=r"none of the 1 listed images exists"):
        open_dataset(tmp_path, skip_bad=True)
    root, _ = _coco(tmp_path / "c", n_images=0)
    with pytest.raises(DatasetError, match=r"instances_val2017.json lists no images"):
        open_dataset(root)


def test_both_layouts_in_one_folder_is_ambiguous(tmp_path):
    root, _ = _coco(tmp_path)
    imagenet_folder(root, ENTRIES[:1])
    with pytest.raises(DatasetError, match="both val_map.txt and annotations"):
        open_dataset(root)


def test_load_image_is_cv2_imread_and_grayscale_comes_back_as_three_channels(tmp_path):
    import cv2
    imagenet_folder(tmp_path, ENTRIES[:2])
    write_jpeg(tmp_path / ENTRIES[1][0], cv2.cvtColor(photo_bgr("chelsea"), cv2.COLOR_BGR2GRAY))
    colour, gray = (load_image(s) for s in open_dataset(tmp_path).samples)
    assert colour.dtype == np.uint8 and colour.shape == (300, 451, 3)
    np.testing.assert_array_equal(colour, cv2.imread(str(tmp_path / ENTRIES[0][0])))
    assert gray.shape == (300, 451, 3) and (gray[..., 0] == gray[..., 2]).all()


def test_corrupt_and_truncated_images_are_named(tmp_path):
    imagenet_folder(tmp_path, ENTRIES)
    first, second, third = open_dataset(tmp_path).samples
    first.path.write_bytes(b"this is not a JPEG")
    data = second.path.read_bytes()
    second.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"ILSVRC2012_val_00000001.JPEG cannot be decoded"):
        load_image(first)
    with pytest.raises(DatasetError, match=r"ILSVRC2012_val_00000002.JPEG is a truncated JPEG"):
        load_image(second)
    third.path.write_bytes(third.path.read_bytes() + b"\0" * 100)  # padding after the end marker is fine
    assert load_image(third).shape == (300, 451, 3)
    ds = open_dataset(tmp_path)
    ds.record_skip(first)
    ds.record_skip(first)
    assert ds.skipped == [ENTRIES[0][0]] and len(ds) == 3 and ds.usable == 2
    assert "2 of 50,000 images (subset), 1 skipped" in ds.describe()
    third.path.unlink()
    with pytest.raises(DatasetError, match=r"ILSVRC2012_val_00000003.JPEG is missing"):
        load_image(third)


def test_model_on_dataset_of_the_wrong_task(tmp_path):
    ds = open_dataset(imagenet_folder(tmp_path, ENTRIES[:1]))
    expect_kind(ds, "imagenet", "resnet50-v1.5")
    with pytest.raises(DatasetError, match=r"ssd-mobilenet-v1 is scored on coco, but .* is a imagenet dataset"):
        expect_kind(ds, "coco", "ssd-mobilenet-v1")
