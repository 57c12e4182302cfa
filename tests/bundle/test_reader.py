"""A bundle is read in one place and checked before use: model_path confined to the folder, files against the
manifest's sha256, every config field typed and bounded. Real exported bundles, edited as a user or an attacker
would, through the real commands (eval, bench, quantize): one line, exit 2, nothing run or written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

import tiny_models as tm
from edgezoo import zoo
from edgezoo.bundle.config import card_config
from edgezoo.bundle.reader import BundleCheckError, read_bundle, read_bundle_preprocess
from edgezoo.core.errors import ConfigError
from edgezoo.zoo.schema import Target
from edgezoo.cli import main
from tests.bundle_helpers import edit_config, reseal
from tests.evaluation.eval_helpers import bundle, labelled_dataset
from tests.quantize.quant_helpers import photo_folder

COUNT = 6


def _copy(tmp_path: Path, model: str = "mobilenet-v1", target: str = "onnx") -> Path:
    dest = tmp_path / "bundles" / model / target
    shutil.copytree(bundle(model, target), dest)
    return dest


def _eval(folder: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["eval", str(folder), "--dataset", str(labelled_dataset("imagenet", "mobilenet-v1", 8)),
            "--out", str(tmp_path / "evals"), "--count", str(COUNT), *extra]


def _quantize(folder: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["quantize", str(folder), "--calibration", str(photo_folder()), "--frames", "4", "--scheme", "onnx-qdq",
            "--out", str(tmp_path / "quantized"), *extra]


def _refused(capsys, argv: list[str], needle: str, tmp_path: Path) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err, err
    assert not (tmp_path / "evals").exists() and not (tmp_path / "quantized").exists()
    return err


# ----------------------------------------------------------------------------------------------------------------
# model_path is a file of the bundle


@pytest.mark.parametrize("model_path, needle", [
    ("{other}", "is not a file name inside the bundle"),  # absolute: another model anywhere on disk
    ("../../elsewhere/model.onnx", "leads out of the bundle folder"),
    ("link.onnx", "leads out of the bundle folder"),  # a link inside the bundle to a file outside it
])
def test_model_path_outside_the_bundle_is_refused_by_eval_and_quantize(tmp_path, capsys, model_path, needle):
    folder = _copy(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    other = tm.build_onnx(tmp_path / "elsewhere" / "model.onnx")
    (folder / "link.onnx").symlink_to(other)
    edit_config(folder, lambda c: c["session"].update(model_path=model_path.format(other=other)))
    for argv in (_eval(folder, tmp_path), _quantize(folder, tmp_path)):
        _refused(capsys, argv, needle, tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# files against the manifest


def test_a_swapped_model_is_refused_naming_the_file_and_accepted_on_request(tmp_path, capsys):
    folder = _copy(tmp_path)
    shutil.copyfile(folder / "model.onnx", tmp_path / "original.onnx")
    tm.build_onnx(folder / "model.onnx")  # another network in mobilenet-v1's bundle
    err = _refused(capsys, _eval(folder, tmp_path), f"{folder / 'model.onnx'}: ", tmp_path)
    assert "the manifest records" in err and "--allow-edited-bundle" in err
    _refused(capsys, _quantize(folder, tmp_path), f"{folder / 'model.onnx'}: ", tmp_path)
    # Edited on purpose: the same network saved again (other bytes) runs with the override, and says so.
    import onnx

    model = onnx.load(str(tmp_path / "original.onnx"))
    model.doc_string = "edited by hand"
    onnx.save(model, str(folder / "model.onnx"))
    assert main(_eval(folder, tmp_path)) == 2
    capsys.readouterr()
    assert main(_eval(folder, tmp_path, "--allow-edited-bundle", "--json")) == 0
    out, err = capsys.readouterr()
    assert "edited bundle accepted" in err and json.loads(out)[0]["count"] == COUNT


def test_edited_config_and_unlisted_files_are_refused(tmp_path, capsys):
    folder = _copy(tmp_path, "ssd-mobilenet-v1", "onnx")
    edit_config(folder, lambda c: c["preprocess"].update(reverse_channels=True), seal=False)
    err = _refused(capsys, _eval(folder, tmp_path), f"{folder / 'config.yaml'}: ", tmp_path)
    assert "the manifest records" in err
    reseal(folder, "config.yaml")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["outputs"] = [o for o in manifest["outputs"] if o["name"] != "meta_arch.prototxt"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleCheckError, match="meta_arch.prototxt: not listed in manifest.json's outputs"):
        read_bundle(folder).file("meta_arch.prototxt")


def test_tflite_int8_uses_only_the_source_graph_the_manifest_recorded(tmp_path, capsys):
    folder = _copy(tmp_path, "mobilenet-v1", "tflite")
    manifest = json.loads((folder / "manifest.json").read_text())
    other = tm.build_tf_pb(tmp_path / "other.pb")
    argv = ["quantize", str(folder), "--calibration", str(photo_folder()), "--frames", "4", "--scheme",
            "tflite-int8", "--out", str(tmp_path / "quantized")]
    (folder / "manifest.json").write_text(json.dumps({**manifest, "original": str(other)}))
    _refused(capsys, argv, f"'original' ({str(other)!r}) is none of the sources", tmp_path)
    # The recorded source itself, changed since the export: its sha256 no longer matches.
    source = next(s for s in manifest["sources"] if s["path"] == manifest["original"])
    fake = dict(source, sha256="0" * 64)
    (folder / "manifest.json").write_text(json.dumps({**manifest, "sources": [fake]}))
    _refused(capsys, argv, "its sha256 differs from the one the manifest records", tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# fields: typed, bounded, finite


@pytest.mark.parametrize("change, needle", [
    (lambda c: c["preprocess"].update(resize=100000), "preprocess.resize [100000, 100000] is larger than any model"),
    (lambda c: c["preprocess"].update(resize=[4000, 9000], crop=[4000, 9000]), "is larger than any model input"),
    (lambda c: c["preprocess"].update(crop=[500, 500]), "preprocess.crop [500, 500] is larger than the resized"),
    (lambda c: c["session"].update(input_mean=[float("nan"), 0, 0]), "input_mean [nan, 0.0, 0.0]: nan is not a"),
    (lambda c: c["session"].update(input_scale=float("inf")), "input_scale [inf, inf, inf]: inf is not a finite"),
    (lambda c: c["session"].update(input_scale=[0, 1, 1]), "a zero scale erases the input"),
    (lambda c: c.update(metric=[".."]), "metric must be a mapping, got ['..']"),
    (lambda c: c["metric"].update(label_offset_pred="abc"), "label_offset_pred: 'abc' is not an int"),
    (lambda c: c["metric"].update(label_offset_pred=float("inf")), "label_offset_pred: inf is not an int"),
    (lambda c: c["metric"].update(label_offset_pred=10**12), "must hold ints within"),
    (lambda c: c["session"].update(model_id="../../x"), "session.model_id '../../x' is not a model id"),
])
def test_config_fields_are_checked_before_anything_runs(tmp_path, capsys, change, needle):
    folder = _copy(tmp_path)
    edit_config(folder, change)  # resealed: consistent with the manifest, so only the field checks stand
    for argv in (_eval(folder, tmp_path), _quantize(folder, tmp_path)):
        _refused(capsys, argv, needle, tmp_path)


def test_bench_reads_through_the_same_checks(tmp_path, capsys):
    folder = _copy(tmp_path, "mobilenet-v1", "tflite")
    edit_config(folder, lambda c: c["preprocess"].update(resize=100000))
    _refused(capsys, ["bench", str(folder), "--dataset", str(labelled_dataset("imagenet", "mobilenet-v1", 8)),
                      "--scenario", "SingleStream", "--out", str(tmp_path / "evals")],
             "preprocess.resize [100000, 100000]", tmp_path)


def test_oversized_files_are_not_parsed(tmp_path):
    folder = _copy(tmp_path)
    with open(folder / "config.yaml", "a") as fh:
        fh.write("# padding\n" * 120_000)
    reseal(folder, "config.yaml")
    with pytest.raises(Exception, match="larger than 1 MiB"):
        read_bundle(folder)
    folder = _copy(tmp_path / "b")
    (folder / "manifest.json").write_text(json.dumps({"outputs": [], "pad": "x" * (17 << 20)}))
    with pytest.raises(BundleCheckError, match="larger than 16 MiB"):
        read_bundle(folder)
    (folder / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BundleCheckError, match="unreadable"):
        read_bundle(folder)


def test_a_fifo_in_place_of_a_bundle_file_is_refused_not_waited_on(tmp_path):
    import os

    folder = _copy(tmp_path)
    (folder / "runtime_options.yaml").unlink()
    os.mkfifo(folder / "runtime_options.yaml")  # hashing it would block forever
    with pytest.raises(BundleCheckError, match="runtime_options.yaml: not a regular file"):
        read_bundle(folder)


def test_a_folder_without_config_yaml_or_with_broken_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"no config.yaml, so its preprocessing is unknown"):
        read_bundle_preprocess(tmp_path)
    (tmp_path / "config.yaml").write_text("preprocess: [unclosed")
    reseal(tmp_path, "config.yaml")  # consistent with its manifest, so the YAML itself is what is refused
    with pytest.raises(ConfigError, match=r"config.yaml: not valid YAML"):
        read_bundle_preprocess(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(card_config(zoo.get_card("mobilenet-v1"), Target.ONNX)))
    (tmp_path / "model.onnx").write_bytes(b"not loaded: reading a bundle checks it against the manifest only")
    reseal(tmp_path, "config.yaml", "model.onnx")
    assert read_bundle_preprocess(tmp_path).model_id == "mobilenet-v1"


def test_a_good_bundle_reads_whole():
    folder = bundle("ssd-mobilenet-v1", "onnx")
    read = read_bundle(folder)
    assert read.model == folder.resolve() / "model.onnx" and read.model_id == "ssd-mobilenet-v1"
    assert read.card().id == "ssd-mobilenet-v1" and read.standin and read.notes == []
    assert read.file("meta_arch.prototxt") == folder.resolve() / "meta_arch.prototxt"
    assert read.file("nothing-here.txt") is None
    assert read.runtime_options["tensor_bits"] == 8 and read.runtime_options_header.startswith("# STAND-IN")
