"""The bundle: atomic writes (no half bundle, no staging leftovers), failed parity kept apart, manifest and
verify.json contents."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from types import MappingProxyType

import pytest
import yaml

from edgezoo import zoo
from edgezoo.bundle.staging import BundleError
from edgezoo.core.errors import RecipeError
from edgezoo.export.api import export_model
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.params import ParamSpec, ParamType
from edgezoo.standins import StandinVariant
from edgezoo.verify.report import ParityReport
from edgezoo.zoo.schema import RecipeSpec, Target

MODEL_BYTES = b"not really a tflite model, but bytes with a known hash"


def _output(rin: RecipeInput, *, passed: bool, data: bytes = MODEL_BYTES) -> RecipeOutput:
    model = rin.workdir / "converted.tflite"
    model.write_bytes(data)
    report = ParityReport(original="orig.pb", converted=str(model), task="tensors", standin=rin.standin)
    report.add("y: max_abs_error", 1e-6 if passed else 0.5, 1e-3)
    return RecipeOutput(model=model, verify=report, cut=["y"], cut_reason="test", notes=["a note"],
                        runtime_options={"deny_list:layer_type": "1"}, config={"postprocess": {"formatter": "x"}})


@register("test-passes", params=[ParamSpec("tag", ParamType.TEXT, "bytes appended to the model")])
def _passes(rin: RecipeInput) -> RecipeOutput:
    return _output(rin, passed=True, data=MODEL_BYTES + rin.params.get("tag", "").encode())


@register("test-parity-fails")
def _parity_fails(rin: RecipeInput) -> RecipeOutput:
    return _output(rin, passed=False)


@register("test-crashes-midway")
def _crashes(rin: RecipeInput) -> RecipeOutput:
    (rin.workdir / "half-written.tflite").write_bytes(b"half")
    raise RecipeError("converter exploded halfway")


@register("test-loses-its-model")
def _loses(rin: RecipeInput) -> RecipeOutput:
    out = _output(rin, passed=True)
    out.model.unlink()
    return out


def _card(recipe: str):
    card = zoo.get_card("resnet50")
    return dataclasses.replace(card, recipes=MappingProxyType({Target.TFLITE: RecipeSpec(recipe, {})}))


def _leftovers(out) -> list[str]:
    folder = out / "resnet50-v1.5"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_bundle_files_manifest_and_verify(tmp_path):
    r = export_model(_card("test-passes"), "tflite", out_dir=tmp_path, standin=True)
    assert r.passed and r.bundle == tmp_path / "resnet50-v1.5" / "tflite"
    assert _leftovers(tmp_path) == ["tflite"]  # no staging folder left behind
    names = {p.name for p in r.bundle.iterdir()}
    assert names == {"model.tflite", "runtime_options.yaml", "config.yaml", "manifest.json", "verify.json",
                     ".edgezoo-output.json"}  # the marker: edgezoo wrote this folder, so it may replace it

    manifest = json.loads((r.bundle / "manifest.json").read_text())
    assert list(manifest)[0] == "standin" and manifest["standin"] is True and manifest["banner"] == "STAND-IN"
    outputs = {o["name"]: o for o in manifest["outputs"]}
    assert outputs["model.tflite"]["sha256"] == hashlib.sha256(MODEL_BYTES).hexdigest()
    assert outputs["model.tflite"]["size"] == len(MODEL_BYTES)
    for name in ("runtime_options.yaml", "config.yaml", "verify.json"):
        assert outputs[name]["sha256"] == hashlib.sha256((r.bundle / name).read_bytes()).hexdigest()
    assert manifest["recipe"]["name"] == "test-passes" and manifest["cut"] == ["y"]
    assert manifest["model"]["id"] == "resnet50-v1.5" and manifest["target"] == "tflite"
    assert {"tensorflow-cpu", "onnx", "onnxruntime", "ai-edge-litert", "tf2onnx", "numpy"} <= set(manifest["tools"])
    assert manifest["started_at"] <= manifest["finished_at"]

    verify = json.loads((r.bundle / "verify.json").read_text())
    assert list(verify)[0] == "standin" and verify["standin"] is True and verify["passed"] is True
    assert verify["converted"] == str(r.bundle / "model.tflite")  # where the user finds it, not the staging dir

    runtime = yaml.safe_load((r.bundle / "runtime_options.yaml").read_text())
    assert runtime["tensor_bits"] == 8 and runtime["deny_list:layer_type"] == "1"
    config_text = (r.bundle / "config.yaml").read_text()
    assert config_text.startswith("# STAND-IN")
    config = yaml.safe_load(config_text)
    assert config["task_type"] == "classification"
    assert config["session"]["session_name"] == "tflitert" and config["session"]["model_path"] == "model.tflite"
    assert config["session"]["input_mean"] == [123.68, 116.78, 103.94] and config["preprocess"]["crop"] == 224
    assert config["session"]["runtime_options"]["deny_list:layer_type"] == "1"  # inline, TI's loader reads it there
    assert config["metric"]["label_offset_pred"] == -1
    assert config["postprocess"] == {"formatter": "x"}  # the recipe's config merged over the card's
    assert config["model_info"]["metric_reference"] == {"accuracy_top1%": 76.456}
    # The test recipe's postprocess is not TI's: the manifest says so rather than claiming a loadable config.
    assert manifest["ti_config"]["loadable_by_ti_tools"] is False
    assert manifest["ti_config"]["problems"] == [
        "postprocess: unexpected keyword 'formatter' (the classification post-processing does not take it)",
        "postprocess.formatter: 'x' is not one of TI's formatters"]


def test_failing_recipe_leaves_no_bundle_and_no_staging(tmp_path):
    with pytest.raises(RecipeError):
        export_model(_card("test-crashes-midway"), "tflite", out_dir=tmp_path / "out", standin=True)
    assert not (tmp_path / "out").exists()  # not even the folders it created for the bundle


def test_failing_recipe_keeps_the_previous_bundle(tmp_path):
    good = export_model(_card("test-passes"), "tflite", out_dir=tmp_path, standin=True)
    before = (good.bundle / "manifest.json").read_bytes()
    with pytest.raises(RecipeError):
        export_model(_card("test-crashes-midway"), "tflite", out_dir=tmp_path, standin=True)
    with pytest.raises(BundleError):
        export_model(_card("test-loses-its-model"), "tflite", out_dir=tmp_path, standin=True)
    assert (good.bundle / "manifest.json").read_bytes() == before
    assert _leftovers(tmp_path) == ["tflite"]


def test_parity_failure_goes_to_failed_folder_and_never_replaces_a_good_bundle(tmp_path):
    good = export_model(_card("test-passes"), "tflite", out_dir=tmp_path, standin=True)
    before = (good.bundle / "model.tflite").read_bytes()
    bad = export_model(_card("test-parity-fails"), "tflite", out_dir=tmp_path, standin=True)
    assert not bad.passed and bad.bundle == tmp_path / "resnet50-v1.5" / "tflite.failed"
    assert (good.bundle / "model.tflite").read_bytes() == before
    verify = json.loads((bad.bundle / "verify.json").read_text())
    assert verify["passed"] is False and verify["checks"][0]["value"] == 0.5
    manifest = json.loads((bad.bundle / "manifest.json").read_text())
    assert manifest["verification"]["passed"] is False and "0.5" in manifest["verification"]["failures"]
    assert _leftovers(tmp_path) == ["tflite", "tflite.failed"]


def test_reexport_replaces_the_bundle_whole(tmp_path):
    first = export_model(_card("test-passes"), "tflite", out_dir=tmp_path, standin=True, params={"tag": "one"})
    (first.bundle / "stray.txt").write_text("left by the user")
    second = export_model(_card("test-passes"), "tflite", out_dir=tmp_path, standin=True, params={"tag": "two"})
    assert (second.bundle / "model.tflite").read_bytes().endswith(b"two")
    assert not (second.bundle / "stray.txt").exists()  # a bundle is replaced, never merged
    assert _leftovers(tmp_path) == ["tflite"]  # the old one moved aside and deleted


def test_a_file_in_the_way_is_a_clear_error(tmp_path):
    (tmp_path / "resnet50-v1.5").mkdir()
    (tmp_path / "resnet50-v1.5" / "tflite").write_text("a file, not a folder")
    with pytest.raises(BundleError, match="not a folder"):
        export_model(_card("test-passes"), "tflite", out_dir=tmp_path, standin=True)
    assert _leftovers(tmp_path) == ["tflite"]


def test_real_export_manifest_records_standin_sources(tmp_path, monkeypatch):
    r = export_model(zoo.get_card("resnet50"), Target.TFLITE, out_dir=tmp_path, standin=True,
                     variant=StandinVariant.REDUCED, offline=True)
    manifest = json.loads((r.bundle / "manifest.json").read_text())
    (source,) = manifest["sources"]
    assert source["file"] == "resnet50_v1.pb" and source["standin"] is True
    from pathlib import Path

    assert source["sha256"] == hashlib.sha256(Path(source["path"]).read_bytes()).hexdigest()
    assert manifest["standin_variant"] == "reduced"
    model = manifest["outputs"][0]
    assert model["name"] == "model.tflite"
    assert model["sha256"] == hashlib.sha256((r.bundle / "model.tflite").read_bytes()).hexdigest()
    assert r.headline().startswith("STAND-IN: PASS")
