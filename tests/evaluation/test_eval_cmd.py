"""`edgezoo eval` through the CLI: the table/JSON, the files, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json

import pytest

from edgezoo.cli import main
from tests.evaluation.eval_helpers import bundle, labelled_dataset

COUNT = 8


def _eval(capsys, *args):
    capsys.readouterr()  # what building the fixtures printed
    code = main(["eval", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_and_files_for_original_and_bundle(tmp_path, capsys):
    data = labelled_dataset("imagenet", "mobilenet-v1", COUNT)
    code, out, _ = _eval(capsys, "mobilenet-v1", bundle("mobilenet-v1", "tflite"), "--dataset", data, "--standin",
                         "--standin-variant", "reduced", "--out", tmp_path, "--json", "--count", 6)
    assert code == 0
    rows = json.loads(out)
    assert [r["metric"] for r in rows] == ["top1", "top1"]
    assert all(r["count"] == 6 and r["passed"] is None and r["target"] == pytest.approx(70.2464) for r in rows)
    assert rows[0]["value"] == 100.0
    for slug in ("original", "tflite"):
        folder = tmp_path / "mobilenet-v1" / slug
        assert json.loads((folder / "accuracy.json").read_text())["value"] == rows[slug == "tflite"]["value"]
        assert len(json.loads((folder / "mlperf_log_accuracy.json").read_text())) == 6


def test_table_says_subset(tmp_path, capsys):
    data = labelled_dataset("imagenet", "mobilenet-v1", COUNT)
    code, out, _ = _eval(capsys, bundle("mobilenet-v1", "tflite"), "--dataset", data, "--out", tmp_path)
    assert code == 0
    assert out.startswith("STAND-IN") and f"subset: {COUNT} of 50,000" in out and "LiteRT" in out


def _refused(capsys, tmp_path, *args, match):
    out_dir = tmp_path / "evals"
    code, out, err = _eval(capsys, *args, "--out", out_dir)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and match in err, err
    assert not out_dir.exists()


def test_bundle_without_config_yaml(tmp_path, capsys):
    folder = tmp_path / "notabundle"
    folder.mkdir()
    (folder / "model.tflite").write_bytes((bundle("mobilenet-v1", "tflite") / "model.tflite").read_bytes())
    _refused(capsys, tmp_path, folder, "--dataset", labelled_dataset("imagenet", "mobilenet-v1", COUNT),
             match="no config.yaml")


def test_model_with_a_dataset_of_the_wrong_task(tmp_path, capsys):
    _refused(capsys, tmp_path, bundle("mobilenet-v1", "tflite"), "--dataset",
             labelled_dataset("coco", "ssd-mobilenet-v1", COUNT), match="coco dataset")


@pytest.mark.parametrize("value, match", [("0", "--count 0: out of range"), ("abc", "not a whole number"),
                                          ("-3", "--count -3: out of range")])
def test_bad_count(tmp_path, capsys, value, match):
    _refused(capsys, tmp_path, bundle("mobilenet-v1", "tflite"), "--dataset",
             labelled_dataset("imagenet", "mobilenet-v1", COUNT), "--count", value, match=match)


def test_neither_model_nor_folder(tmp_path, capsys):
    _refused(capsys, tmp_path, "mobilenet-v9", "--dataset", labelled_dataset("imagenet", "mobilenet-v1", COUNT),
             match="neither a bundle folder nor a model id")


def test_corrupt_image_is_named_or_skipped_and_counted(tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(labelled_dataset("imagenet", "mobilenet-v1", COUNT), data)
    first = (data / "val_map.txt").read_text().split()[0]
    (data / first).write_bytes((data / first).read_bytes()[:200])  # a truncated JPEG
    code, _, err = _eval(capsys, bundle("mobilenet-v1", "tflite"), "--dataset", data, "--out", tmp_path / "a")
    assert code == 2 and first.split("/")[-1] in err and not (tmp_path / "a").exists()
    code, out, _ = _eval(capsys, bundle("mobilenet-v1", "tflite"), "--dataset", data, "--out", tmp_path / "b",
                         "--skip-bad", "--json")
    (row,) = json.loads(out)
    assert code == 0 and row["count"] == COUNT - 1 and row["skipped"] == 1 and first in row["skipped_files"][0]


def test_dataset_standin_labels_from_a_model_make_its_original_score_everything(tmp_path, capsys):
    """`dataset standin --labels-from MODEL`: the labels are the stand-in original's own predictions, so evaluating
    that original on them scores 100 % top-1 (its predictions are recomputed by eval, independently)."""
    data = tmp_path / "imagenet"
    assert main(["dataset", "standin", "imagenet", "--out", str(data), "--count", "5", "--labels-from", "mobilenet",
                 "--standin-variant", "reduced"]) == 0
    assert "STAND-IN" in capsys.readouterr().out
    code = main(["eval", "mobilenet", "--dataset", str(data), "--standin", "--standin-variant", "reduced",
                 "--out", str(tmp_path / "evals"), "--json"])
    assert code == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["metric"] == "top1" and result["count"] == 5 and result["value"] == 100.0
    assert main(["dataset", "standin", "coco", "--out", str(tmp_path / "coco"), "--labels-from", "mobilenet"]) == 2
    assert "predicts imagenet labels, not coco" in capsys.readouterr().err
    assert not (tmp_path / "coco").exists()


@pytest.mark.parametrize("value, match", [("0", "--threads 0: out of range (1..1,024)"),
                                          ("two", "--threads 'two': not a whole number"),
                                          ("5000", "--threads 5000: out of range")])
def test_bad_threads(tmp_path, capsys, value, match):
    _refused(capsys, tmp_path, bundle("mobilenet-v1", "tflite"), "--dataset",
             labelled_dataset("imagenet", "mobilenet-v1", COUNT), "--threads", value, match=match)


@pytest.fixture
def thread_counts(monkeypatch):
    """The thread count every runtime was loaded with (the runners' own check, observed, not replaced)."""
    from edgezoo.graphs import runners

    seen: list[int] = []
    real = runners.check_threads

    def observed(threads):
        seen.append(real(threads))
        return seen[-1]

    monkeypatch.setattr(runners, "check_threads", observed)
    return seen


def test_threads_default_to_the_cpus_and_follow_the_option(tmp_path, capsys, thread_counts):
    from edgezoo.graphs.runners import available_cpus

    data = labelled_dataset("imagenet", "mobilenet-v1", COUNT)
    things = [bundle("mobilenet-v1", "tflite"), bundle("mobilenet-v1", "onnx")]
    code, _, _ = _eval(capsys, *things, "--dataset", data, "--out", tmp_path / "default")
    assert code == 0 and thread_counts and set(thread_counts) == {available_cpus()}
    thread_counts.clear()
    code, _, _ = _eval(capsys, *things, "--dataset", data, "--out", tmp_path / "one", "--threads", "1")
    assert code == 0 and thread_counts and set(thread_counts) == {1}
    for slug in ("tflite", "onnx"):  # the same records whatever the threads
        name = f"mobilenet-v1/{slug}/mlperf_log_accuracy.json"
        assert (tmp_path / "default" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
