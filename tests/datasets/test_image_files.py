"""Image files checked before decoding: real PNG decompression bombs refused by their header (or skipped and counted
with --skip-bad), names longer than the file system allows, and the decoding pool's shared pixel budget."""

from __future__ import annotations

import json
import shutil
import threading
import time

import numpy as np
import pytest

from edgezoo.cli import main
from edgezoo.datasets import Sample, load_image, open_dataset
from edgezoo.datasets.image_files import DECODE_GATE, IN_FLIGHT_PIXELS, MAX_IMAGE_PIXELS, PixelGate, image_pixels
from edgezoo.core.errors import DatasetError
from tests.datasets.dataset_files import coco_annotations, imagenet_folder, png_bomb, write_jpeg

ENTRIES = [("val/ILSVRC2012_val_00000001.JPEG", 65), ("val/ILSVRC2012_val_00000002.JPEG", 970)]
LONG_NAME = "val/" + "x" * 300 + ".JPEG"  # one path component over 255 bytes: ENAMETOOLONG, not "missing"


def _sample(path) -> Sample:
    return Sample(index=0, path=path, label=None, image_id=None, height=0, width=0)


@pytest.mark.parametrize("side", [9000, 14000], ids=["over-the-budget", "over-pillows-own-limit"])
def test_png_bomb_is_refused_from_its_header(tmp_path, side):
    bomb = png_bomb(tmp_path / "bomb.png", side, side)
    assert bomb.stat().st_size < 1_000_000 and side * side > MAX_IMAGE_PIXELS  # small file, huge image
    with pytest.raises(DatasetError) as info:
        load_image(_sample(bomb))
    text = str(info.value)
    assert f"{side * side:,} pixels, over the budget of {MAX_IMAGE_PIXELS:,}" in text and "bomb.png" in text
    assert "--skip-bad" in text and "\n" not in text


def test_images_at_the_budget_still_decode(tmp_path):
    side = int(MAX_IMAGE_PIXELS ** 0.5)  # 8192 x 8192: exactly the budget
    path = png_bomb(tmp_path / "large.png", side, side)
    assert image_pixels(path) == MAX_IMAGE_PIXELS
    assert load_image(_sample(path)).shape == (side, side, 3)


def test_eval_refuses_a_bomb_or_skips_it(tmp_path, capsys):
    from tests.evaluation.eval_helpers import bundle, labelled_dataset

    data = tmp_path / "data"
    shutil.copytree(labelled_dataset("imagenet", "mobilenet-v1", 4), data)
    png_bomb(data / "val" / "bomb.png", 12000, 12000)
    with (data / "val_map.txt").open("a") as val_map:
        val_map.write("val/bomb.png 7\n")
    folder = bundle("mobilenet-v1", "tflite")
    capsys.readouterr()
    assert main(["eval", str(folder), "--dataset", str(data), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err  # the progress line, then the error
    assert "Traceback" not in err and err.splitlines()[-1].startswith("edgezoo: error: image ")
    assert "bomb.png is 12000x12000 = 144,000,000 pixels, over the budget" in err.splitlines()[-1]
    assert not (tmp_path / "o").exists()
    assert main(["eval", str(folder), "--dataset", str(data), "--out", str(tmp_path / "o"), "--skip-bad",
                 "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["count"] == 4 and result["skipped"] == 1 and "bomb.png is 12000x12000" in result["skipped_files"][0]


def test_overlong_image_name_is_one_error_or_skipped(tmp_path):
    imagenet_folder(tmp_path, ENTRIES)
    with (tmp_path / "val_map.txt").open("a") as val_map:
        val_map.write(f"{LONG_NAME} 3\n")
    with pytest.raises(DatasetError, match=r"val_map.txt:3\) has a name longer than the file system allows"):
        open_dataset(tmp_path)
    dataset = open_dataset(tmp_path, skip_bad=True)
    assert [s.index for s in dataset.samples] == [0, 1] and dataset.skipped == [LONG_NAME]
    with pytest.raises(DatasetError, match="name longer than the file system allows"):
        load_image(_sample(tmp_path / LONG_NAME))


def test_overlong_coco_file_name_with_skip_bad_through_the_cli(tmp_path, capsys):
    images = [{"id": 1, "file_name": "000000000001.jpg", "height": 60, "width": 80},
              {"id": 2, "file_name": "y" * 260 + ".jpg", "height": 60, "width": 80}]
    data = coco_annotations(images, [], [{"id": 1, "name": "person"}])
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    write_jpeg(root / "val2017" / "000000000001.jpg", np.full((60, 80, 3), 90, np.uint8))
    code = main(["eval", "ssd-mobilenet", "--standin", "--standin-variant", "reduced", "--offline", "--dataset",
                 str(root), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "longer than the file system allows" in err, err
    assert "Traceback" not in err and len(err) < 600  # the 260-character name is cut in the message
    ds = open_dataset(root, skip_bad=True)
    assert len(ds.samples) == 1 and ds.skipped == ["val2017/" + "y" * 260 + ".jpg"]


def test_pixel_gate_never_holds_more_than_its_budget():
    gate = PixelGate(100)
    inside, most, lock = [0], [0], threading.Lock()

    def work(pixels):
        held = min(pixels, gate.budget)  # one request never waits for more than the whole budget
        with gate.hold(pixels):
            with lock:
                inside[0] += held
                most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            with lock:
                inside[0] -= held

    threads = [threading.Thread(target=work, args=(p,)) for p in (60, 60, 30, 30, 500, 10, 70)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)  # a request over the budget is capped, never stuck
    assert most[0] == gate.peak <= 100 and gate.used == 0


def test_decoding_pool_holds_at_most_the_in_flight_budget(tmp_path):
    """Four threads, five 49-megapixel PNGs: without the shared budget four would be decoded at once (588 MB)."""
    from edgezoo.evaluation.engine import prepared_inputs

    side = 7000
    assert 2 * side * side <= IN_FLIGHT_PIXELS < 3 * side * side
    paths = [png_bomb(tmp_path / f"{i}.png", side, side) for i in range(1)]
    paths += [shutil.copyfile(paths[0], tmp_path / f"{i}.png") for i in range(1, 5)]
    DECODE_GATE.peak = 0
    shapes = [tensor.shape for _, tensor, _ in prepared_inputs([_sample(p) for p in paths], load_image,
                                                               lambda image: image[:2, :2].copy(), workers=4)]
    assert shapes == [(2, 2, 3)] * 5
    assert DECODE_GATE.peak == 2 * side * side and DECODE_GATE.used == 0
