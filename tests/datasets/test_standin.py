"""Stand-in datasets: MLPerf's exact layouts from real photographs, marked STAND-IN, atomic, with a labeller hook."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgezoo.core.errors import DatasetError, DiskFullError
from edgezoo.datasets import DatasetKind, build_standin, load_image, open_dataset
from edgezoo.datasets.coco_categories import COCO_CATEGORIES

SRC = Path(__file__).resolve().parents[2] / "src"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_imagenet_standin_layout_and_variety(tmp_path):
    root = build_standin(DatasetKind.IMAGENET, tmp_path / "imagenet", count=9)
    ds = open_dataset(root)
    assert ds.kind is DatasetKind.IMAGENET and ds.standin and len(ds) == 9 and not ds.is_full
    lines = (root / "val_map.txt").read_text().splitlines()
    assert lines[0].startswith("val/ILSVRC2012_val_00000001.JPEG ") and len(lines) == 9
    images = [load_image(s) for s in ds.samples]
    assert all(s.path.read_bytes()[:2] == b"\xff\xd8" for s in ds.samples)  # JPEG
    gray = [i for i, im in enumerate(images) if (im[..., 0] == im[..., 1]).all() and (im[..., 1] == im[..., 2]).all()]
    assert gray == [1]
    assert len({im.shape[:2] for im in images}) == 9 and all(h % 2 and w % 2 for h, w, _ in (im.shape for im in images))
    assert {s.label for s in ds.samples} == {812, 759, 967, 657, 281}  # each photograph's own class
    assert "STAND-IN" in (root / "STAND-IN.txt").read_text()


def test_coco_standin_is_real_coco_with_boxes_inside_the_images(tmp_path):
    from pycocotools.coco import COCO

    root = build_standin("coco", tmp_path / "coco", count=8)
    ds = open_dataset(root)
    assert ds.kind is DatasetKind.COCO and ds.standin and ds.category_ids == [c for c, _ in COCO_CATEGORIES]
    gt = COCO(str(ds.annotations_path))
    assert "STAND-IN" in gt.dataset["info"]["description"]
    ids = [s.image_id for s in ds.samples]
    assert len(set(ids)) == 8 and ids != list(range(8))
    for sample in ds.samples:
        assert load_image(sample).shape[:2] == (sample.height, sample.width)
        for ann in gt.imgToAnns[sample.image_id]:
            x, y, w, h = ann["bbox"]
            assert 0 <= x and 0 <= y and x + w <= sample.width + 0.01 and y + h <= sample.height + 0.01
    with_boxes = [s for s in ds.samples if gt.imgToAnns[s.image_id]]
    assert 0 < len(with_boxes) < 8  # the rocket photograph has no COCO object, as COCO's 48 empty images


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = _files(build_standin("imagenet", tmp_path / "a", count=4, seed=3))
    b = _files(build_standin("imagenet", tmp_path / "b", count=4, seed=3))
    c = _files(build_standin("imagenet", tmp_path / "c", count=4, seed=4))
    assert a == b and a != c


def test_labeller_sees_the_image_as_loaded_and_sets_the_ground_truth(tmp_path):
    seen = []

    def classify(image_bgr):
        seen.append(image_bgr)
        return int(image_bgr.mean()) % 1000

    ds = open_dataset(build_standin("imagenet", tmp_path / "i", count=3, labeller=classify))
    for sample, image in zip(ds.samples, seen):
        np.testing.assert_array_equal(image, load_image(sample))
        assert sample.label == int(image.mean()) % 1000

    def detect(image_bgr):
        h, w = image_bgr.shape[:2]
        return [(18, [w / 4, h / 4, w / 2, h / 2])]

    ds = open_dataset(build_standin("coco", tmp_path / "c", count=3, labeller=detect))
    anns = json.loads(ds.annotations_path.read_text())["annotations"]
    assert [(a["category_id"], a["bbox"][2]) for a in anns] == [(18, round(s.width / 2, 2)) for s in ds.samples]


@pytest.mark.parametrize("kind, labeller, match", [
    ("imagenet", lambda im: 1000, r"an ImageNet label must be 0..999"),
    ("imagenet", lambda im: "cat", r"an ImageNet label must be 0..999"),
    ("coco", lambda im: [(12, [0, 0, 5, 5])], r"expected \(COCO category id, \[x, y, width, height\]\)"),
    ("coco", lambda im: [(18, [0, 0, 0, 5])], r"with a positive size"),
])
def test_bad_labeller_output_leaves_nothing(tmp_path, kind, labeller, match):
    with pytest.raises(DatasetError, match=match):
        build_standin(kind, tmp_path / "new" / "ds", count=2, labeller=labeller)
    assert list(tmp_path.iterdir()) == []


def test_replaces_an_earlier_standin_but_nothing_else(tmp_path):
    root = build_standin("coco", tmp_path / "ds", count=3)
    build_standin("imagenet", root, count=2)
    assert open_dataset(root).kind is DatasetKind.IMAGENET and not (root / "annotations").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty and not a stand-in dataset: refusing"):
        build_standin("imagenet", mine, count=2)
    assert _files(mine) == {"notes.txt": b"keep me"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "mine"]  # no staging folder left


@pytest.mark.parametrize("kwargs, match", [
    ({"count": 0}, "count must be a whole number from 1 to 1000"),
    ({"count": 1001}, "count must be a whole number from 1 to 1000"),
    ({"count": 2.5}, "count must be a whole number"),
    ({"seed": -1}, "seed must be a whole number >= 0"),
])
def test_option_ranges(tmp_path, kwargs, match):
    with pytest.raises(DatasetError, match=match):
        build_standin("imagenet", tmp_path / "ds", **kwargs)
    with pytest.raises(DatasetError, match="unknown dataset kind 'voc'"):
        build_standin("voc", tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_full_disk_is_one_error_and_leaves_nothing(tmp_path, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)  # the disk fills while the images are written
    with pytest.raises(DiskFullError, match=r"no space left on the device while building the stand-in dataset"):
        build_standin("coco", tmp_path / "ds", count=2)
    assert list(tmp_path.iterdir()) == []


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgezoo", "dataset", "standin", *args], capture_output=True,
                          text=True, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_cli_builds_and_reports(tmp_path):
    result = _cli("coco", "--out", str(tmp_path / "c"), "--count", "3")
    assert result.returncode == 0, result.stderr
    assert "STAND-IN coco dataset" in result.stdout and "3 of 5,000 images" in result.stdout
    image = cv2.imread(str(next((tmp_path / "c" / "val2017").iterdir())))
    assert image is not None


@pytest.mark.parametrize("args, match", [
    (["--count", "0"], "count must be a whole number from 1 to 1000"),
    (["--seed", "-2"], "seed must be a whole number >= 0"),
])
def test_cli_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, match):
    result = _cli("imagenet", "--out", str(tmp_path / "x"), *args)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and match in result.stderr
    assert list(tmp_path.iterdir()) == []
