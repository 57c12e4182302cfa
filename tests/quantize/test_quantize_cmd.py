"""`edgezoo quantize` end to end on the reduced MobileNet stand-in and a stand-in ImageNet labelled by the original:
the bundle it writes, the cost table, --max-drop, the 16-bit proposal, and bad input (one line, exit 2, nothing
written)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from edgezoo.cli import main
from tests.quantize.quant_helpers import bundle, labelled_dataset, photo_folder

COUNT = 12


def _run(capsys, *args):
    capsys.readouterr()
    code = main(["quantize", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _float_copy(tmp_path, target="onnx"):
    """A private copy of the float bundle in tmp_path/out/<model>/<target> (quantized bundles land beside it)."""
    dest = tmp_path / "out" / "mobilenet-v1" / target
    shutil.copytree(bundle("mobilenet-v1", target), dest)
    return dest


def test_onnx_qdq_bundle_with_cost(tmp_path, capsys):
    data = labelled_dataset("imagenet", "mobilenet-v1", COUNT)
    src = _float_copy(tmp_path)
    code, out, _ = _run(capsys, src, "--calibration", data, "--frames", 8, "--scheme", "onnx-qdq",
                        "--dataset", data, "--json")
    assert code == 0
    result = json.loads(out)
    folder = src.parent / "onnx-qdq"
    assert result["bundle"] == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == [".edgezoo-output.json", "config.yaml", "manifest.json",
                                                        "model.onnx", "quantize.json", "runtime_options.yaml"]
    options = yaml.safe_load((folder / "runtime_options.yaml").read_text())
    assert options["advanced_options:quantization_scale_type"] == 4
    assert options["advanced_options:prequantized_model"] == 1 and options["tensor_bits"] == 8
    from edgezoo.tidl import ti_config

    config = yaml.safe_load((folder / "config.yaml").read_text())  # stands alone: the quantized options inline
    assert ti_config.problems(config, folder) == []
    inline = {k: v for k, v in config["session"]["runtime_options"].items() if k in options}
    assert inline == options
    float_score, quant_score = result["scores"]
    assert float_score["value"] == 100.0  # the dataset is labelled by the original model
    assert quant_score["delta"] == pytest.approx(quant_score["value"] - 100.0, abs=1e-3)
    # classification agreement with a float model that scores 100 % on its own labels is the top-1
    assert quant_score["agreement"] == pytest.approx(quant_score["value"], abs=0.01)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["standin"] is True and manifest["quantization"]["frames"] == 8
    assert not list(tmp_path.rglob(".*staging*"))


def test_max_drop_sends_the_bundle_to_failed_and_exits_1(tmp_path, capsys):
    data = labelled_dataset("imagenet", "mobilenet-v1", COUNT)
    src = _float_copy(tmp_path)
    code, out, _ = _run(capsys, src, "--calibration", data, "--frames", 4, "--scheme", "onnx-qdq", "--power-of-2",
                        "--dataset", data, "--max-drop", 0)
    drop = 100.0 - json.loads((src.parent / "onnx-qdq.failed" / "quantize.json").read_text())["scores"][1]["value"]
    assert drop > 0  # the stand-in's flat logits always lose some top-1 in 8 bits
    assert code == 1 and "FAIL: drop" in out
    assert not (src.parent / "onnx-qdq").exists()
    options = yaml.safe_load((src.parent / "onnx-qdq.failed" / "runtime_options.yaml").read_text())
    assert options["advanced_options:quantization_scale_type"] == 1


def test_preview_sensitivity_and_16bit_proposal_reduces_the_drop(tmp_path, capsys):
    data = labelled_dataset("imagenet", "mobilenet-v1", COUNT)
    src = _float_copy(tmp_path)
    code, out, _ = _run(capsys, src, "--calibration", photo_folder(), "--frames", 4, "--dataset", data,
                        "--scale-type", 1, "--target-drop", 10, "--json")
    assert code == 0
    result = json.loads(out)
    eight_bit_drop = -result["scores"][1]["delta"]
    ranked = result["sensitivity"]
    assert len(ranked) == 29 and all(r["metric_if_float"] is not None for r in ranked)  # 28 convs + avg pool
    gains = [r["gain"] for r in ranked]
    assert gains == sorted(gains, reverse=True)
    proposal = result["sixteen_bit"]
    # power-of-2 weights on the stand-in's flat logits cost far more than 10 points (so a proposal is needed) ...
    assert eight_bit_drop > 10
    # ... and the proposed layers, in 16 bits, measurably bring the drop under the target
    assert proposal["reached"] and proposal["names"] and proposal["drop"] <= 10
    assert proposal["tried"][0] == [0, pytest.approx(eight_bit_drop, abs=1e-3)]
    folder = src.parent / "tidl-preview"
    options = yaml.safe_load((folder / "runtime_options.yaml").read_text())
    assert options["advanced_options:quantization_scale_type"] == 1 and options["accuracy_level"] == 1
    listed = [n.strip() for n in options["advanced_options:output_feature_16bit_names_list"].split(",")]
    assert listed == proposal["names"] == [n.strip() for n in
                                           options["advanced_options:params_16bit_names_list"].split(",")]
    assert (folder / "tidl_preview.onnx").is_file() and (folder / "model.onnx").read_bytes() == \
        (src / "model.onnx").read_bytes()


def _refused(capsys, tmp_path, *args, match):
    code, out, err = _run(capsys, *args)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and match in err, err
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith((".onnx-qdq", ".tidl-preview", "onnx-qdq",
                                                                     "tidl-preview", "tflite-int8"))]


def test_too_few_calibration_images(tmp_path, capsys):
    _refused(capsys, tmp_path, _float_copy(tmp_path), "--calibration", photo_folder(), "--frames", 20,
             match="4 image(s) found, 20 needed")


def test_image_that_does_not_decode(tmp_path, capsys):
    photos = tmp_path / "photos"
    shutil.copytree(photo_folder(), photos)
    (photos / "broken.png").write_bytes(b"not a png at all")
    _refused(capsys, tmp_path, _float_copy(tmp_path), "--calibration", photos, "--frames", 5,
             match="broken.png cannot be decoded")


def test_bundle_of_the_wrong_kind(tmp_path, capsys):
    _refused(capsys, tmp_path, _float_copy(tmp_path, "tflite"), "--calibration", photo_folder(), "--frames", 4,
             "--scheme", "onnx-qdq", match="onnx-qdq quantizes onnx bundles, this one holds model.tflite")


def test_a_quantized_bundle_is_not_quantized_again(tmp_path, capsys):
    src = _float_copy(tmp_path)
    assert _run(capsys, src, "--calibration", photo_folder(), "--frames", 4, "--scheme", "onnx-qdq")[0] == 0
    code, _, err = _run(capsys, src.parent / "onnx-qdq", "--calibration", photo_folder(), "--frames", 4,
                        "--scheme", "onnx-qdq")
    assert code == 2 and "already a quantized bundle" in err


@pytest.mark.parametrize("args, match", [
    (("--frames", "0"), "--frames 0: out of range"), (("--frames", "x"), "not a whole number"),
    (("--scheme", "int4"), "--scheme 'int4': unknown"), (("--scale-type", "3"), "--scale-type '3': unknown"),
    (("--max-drop", "-1"), "--max-drop -1.0: out of range"), (("--target-drop", "nan"), "out of range"),
    (("--max-drop", "1"), "need --dataset"), (("--frames", "1"), "at least 2 calibration frames"),
])
def test_bad_options(tmp_path, capsys, args, match):
    _refused(capsys, tmp_path, _float_copy(tmp_path), "--calibration", photo_folder(), *args, match=match)


def test_calibration_folder_missing(tmp_path, capsys):
    _refused(capsys, tmp_path, _float_copy(tmp_path), "--calibration", tmp_path / "nowhere",
             match="does not exist")


def test_not_a_bundle(tmp_path, capsys):
    folder = tmp_path / "plain"
    folder.mkdir()
    _refused(capsys, tmp_path, folder, "--calibration", photo_folder(), match="no config.yaml")
    _refused(capsys, tmp_path, tmp_path / "missing", "--calibration", photo_folder(), match="not a bundle folder")


def test_bundle_without_runtime_options(tmp_path, capsys):
    src = _float_copy(tmp_path)
    (src / "runtime_options.yaml").unlink()
    _refused(capsys, tmp_path, src, "--calibration", photo_folder(), "--frames", 4, match="no runtime_options.yaml")
