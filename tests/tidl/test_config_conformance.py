"""Every bundle's config.yaml loads in TI's own tools as it is, and agrees with TI's model-zoo configs field by field.

The loader contract is data (src/edgezoo/tidl/ti_config_contract.yaml, sources named there); TI's model-zoo values
for the MLPerf models are data too (ti_modelzoo_mlperf.yaml next to this file). The bundles are real exports: the 7
zoo bundles on reduced stand-ins, and --graph bundles of a tiny classifier.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edgezoo.bundle.config import DEFAULT_RUNTIME_OPTIONS
from edgezoo.cli import main
from edgezoo.datasets.coco_categories import COCO_CATEGORIES
from edgezoo.tidl import ti_config
from tests import tiny_models

ZOO_BUNDLES = ["mobilenet-v1/tflite", "mobilenet-v1/onnx", "resnet50-v1.5/tflite", "resnet50-v1.5/onnx",
               "ssd-mobilenet-v1/tflite", "ssd-mobilenet-v1/onnx", "ssd-resnet34-1200/onnx"]
MODELZOO = yaml.safe_load((Path(__file__).with_name("ti_modelzoo_mlperf.yaml")).read_text(encoding="utf-8"))
DOC = Path(__file__).resolve().parents[2] / "docs" / "TI_CONFIG.md"


@pytest.fixture(scope="module")
def zoo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    for target, package in (("tflite", []), ("onnx", ["--ti-package"])):
        code = main(["export", "--all", "--to", target, "--standin", "--standin-variant", "reduced", "--offline",
                     "--out", str(out), *package])
        assert code == 0
    return out


def _config(bundle: Path) -> dict:
    return yaml.safe_load((bundle / "config.yaml").read_text(encoding="utf-8"))


def _at(config: dict, path: str):
    """A dotted path; runtime option keys hold a colon, never a dot."""
    node = config
    for part in path.split("."):
        node = node[part]
    return node


@pytest.mark.parametrize("name", ZOO_BUNDLES)
def test_zoo_bundle_config_meets_tis_loader_contract(zoo_out, name):
    bundle = zoo_out / name
    config = _config(bundle)
    assert ti_config.problems(config, bundle) == []
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["ti_config"]["loadable_by_ti_tools"] is True and manifest["ti_config"]["problems"] == []
    # config.yaml stands alone: the runtime options are inline, the same as the convenience copy (+ loader info).
    copy = yaml.safe_load((bundle / "runtime_options.yaml").read_text())
    assert config["session"]["runtime_options"] == {**copy, "info": {"prequantized_model_type": None}}
    for key, value in ti_config.contract()["recommended_runtime_options"].items():
        assert copy[key] == value, key
    assert manifest["runtime_options"]["recipe_changed"] == {}


@pytest.mark.parametrize("name", sorted(MODELZOO["bundles"]))
def test_zoo_bundle_agrees_with_tis_modelzoo_config_except_documented_differences(zoo_out, name):
    entry = MODELZOO["bundles"][name]
    config = _config(zoo_out / name)
    expected = {}
    for path, value in entry["fields"].items():
        if isinstance(value, dict) and path in ("preprocess", "session", "postprocess") and value:
            expected.update({f"{path}.{k}": v for k, v in value.items()})
        else:
            expected[path] = value
    expected.update({f"preprocess.{k}": v for k, v in MODELZOO["common_preprocess"].items()})
    label = expected["metric.label_offset_pred"]
    if label == "coco80":
        expected["metric.label_offset_pred"] = {0: 0, **{i: c for i, (c, _) in enumerate(COCO_CATEGORIES, 1)}}
    elif isinstance(label, dict):
        expected["metric.label_offset_pred"] = {k: k + label["shift"] for k in range(label["first"], label["last"] + 1)}
    differing = {path for path, value in expected.items() if _at(config, path) != value}
    assert differing == set(entry["different"]), {p: (_at(config, p), expected[p]) for p in differing}
    text = DOC.read_text(encoding="utf-8")
    for path in entry["different"]:
        assert f"`{path}`" in text, f"docs/TI_CONFIG.md does not explain {path}"


def test_detection_label_maps_give_coco_ids(zoo_out):
    """The maps TI's COCO evaluation applies: TFLite 0-based classes +1, ResNet34's 1..80 -> the 80 COCO ids."""
    tflite = _config(zoo_out / "ssd-mobilenet-v1/tflite")["metric"]["label_offset_pred"]
    assert tflite[0] == 1 and tflite[89] == 90 and tflite[-1] == 0
    coco = _config(zoo_out / "ssd-resnet34-1200/onnx")["metric"]["label_offset_pred"]
    assert sorted(coco.values())[1:] == sorted(c for c, _ in COCO_CATEGORIES) and coco[0] == 0
    onnx = _config(zoo_out / "ssd-mobilenet-v1/onnx")
    # The ONNX tail outputs boxes, scores, classes: TI's shuffle puts classes before scores.
    assert onnx["postprocess"]["shuffle_indices"] == [0, 2, 1] and onnx["preprocess"]["data_layout"] == "NCHW"


@pytest.fixture(scope="module")
def user_pb(tmp_path_factory):
    return tiny_models.build_tf_pb(tmp_path_factory.mktemp("user") / "user_classifier.pb")


def _graph_export(pb: Path, out: Path, *params: str) -> int:
    shape = f"1x{tiny_models.H}x{tiny_models.W}x{tiny_models.C_IN}"
    argv = ["export", "--graph", str(pb), "--inputs", f"x:{shape}", "--outputs", "dense/BiasAdd", "--to", "tflite",
            "--out", str(out)]
    for p in params:
        argv += [p] if p.startswith("--") else ["--param", p]
    return main(argv)


def test_graph_model_with_stated_normalisation_gets_a_ti_config(user_pb, tmp_path, capsys):
    code = _graph_export(user_pb, tmp_path, "task_type=classification", "input_mean=[127.5,127.5,127.5]",
                         "input_scale=0.5")
    assert code == 0, capsys.readouterr().out
    bundle = tmp_path / "user_classifier" / "tflite"
    config = _config(bundle)
    assert ti_config.problems(config, bundle) == []
    assert config["session"]["input_scale"] == [0.5, 0.5, 0.5]
    assert config["preprocess"]["resize"] == [tiny_models.H, tiny_models.W] == config["preprocess"]["crop"]
    assert json.loads((bundle / "manifest.json").read_text())["ti_config"]["loadable_by_ti_tools"] is True


@pytest.mark.parametrize("name", [b for b in ZOO_BUNDLES if b.endswith("/onnx")])
def test_ti_package_layout(zoo_out, name):
    """--ti-package: <run>/param.yaml + model/ + artifacts/ and <run>.tar.gz with that folder's contents at the top."""
    import tarfile

    bundle = zoo_out / name
    config = _config(bundle)
    run = f"{config['session']['model_id']}_onnxrt"
    folder = bundle / "ti_package" / run
    param = yaml.safe_load((folder / "param.yaml").read_text())
    session = param["session"]
    assert session["model_path"] == "model/model.onnx" and (folder / session["model_path"]).is_file()
    assert (folder / "model" / "model.onnx").read_bytes() == (bundle / "model.onnx").read_bytes()
    assert session["artifacts_folder"] == "artifacts" and (folder / "artifacts").is_dir()
    assert session["run_dir"] == run and session["model_folder"] == "model"
    meta = session["runtime_options"].get("object_detection:meta_layers_names_list")
    assert meta is None or (meta == "model/meta_arch.prototxt" and (folder / meta).is_file())
    for key in ("model_path", "model_folder", "artifacts_folder", "run_dir"):
        session.pop(key)
        config["session"].pop(key, None)
    session["runtime_options"].pop("object_detection:meta_layers_names_list", None)
    config["session"]["runtime_options"].pop("object_detection:meta_layers_names_list", None)
    assert param == config  # the rest is config.yaml's content
    with tarfile.open(bundle / "ti_package" / f"{run}.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert {"param.yaml", "model", "model/model.onnx", "artifacts"} <= set(members)
        assert members["artifacts"].isdir()
        assert tar.extractfile("param.yaml").read() == (folder / "param.yaml").read_bytes()
    outputs = {o["name"] for o in json.loads((bundle / "manifest.json").read_text())["outputs"]}
    assert {f"ti_package/{run}.tar.gz", f"ti_package/{run}/param.yaml"} <= outputs


def test_graph_model_without_normalisation_says_so_and_writes_no_misreadable_config(user_pb, tmp_path, capsys):
    code = _graph_export(user_pb, tmp_path, "--ti-package")
    out = capsys.readouterr().out
    assert code == 0
    assert "config.yaml cannot be in TI's config schema" in out and "normalisation is not stated" in out
    bundle = tmp_path / "user_classifier" / "tflite"
    config = _config(bundle)
    # Not a task TI's loader knows and no preprocessing: it stops, it never feeds raw pixels as if normalised.
    assert config["task_type"] == "tensors" and "preprocess" not in config
    assert "input_mean" not in config["session"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["ti_config"]["loadable_by_ti_tools"] is False
    assert "missing key calibration_dataset (the loader indexes it)" in manifest["ti_config"]["problems"]
    assert any("normalisation is not stated" in n for n in manifest["notes"])
    assert "no TI package written: config.yaml is not in TI's schema" in out and not (bundle / "ti_package").exists()


@pytest.mark.parametrize("param, message", [
    ("input_mean=[1,2]", "--param input_mean=[1.0, 2.0]: expected a number or [R, G, B]"),
    ("input_scale=-1", "--param input_scale: -1 is out of range"),
    ("task_type=detection", "--param task_type: expected one of classification, got 'detection'"),
    ("colour=bgr", "unknown parameter 'colour'"),
])
def test_graph_params_that_cannot_be_used_exit_2_before_anything_is_written(user_pb, tmp_path, capsys, param,
                                                                            message):
    code = _graph_export(user_pb, tmp_path / "out", "task_type=classification", "input_mean=0", "input_scale=1",
                         param)
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_recipe_changing_a_quantization_default_is_stated():
    from edgezoo.bundle.config import runtime_options_manifest

    stated = runtime_options_manifest({"advanced_options:quantization_scale_type": 1, "deny_list:layer_type": "1"})
    assert stated["recipe_changed"] == {"advanced_options:quantization_scale_type": {
        "ti_recommended": DEFAULT_RUNTIME_OPTIONS["advanced_options:quantization_scale_type"], "recipe": 1}}
    assert stated["recipe_added"] == ["deny_list:layer_type"]


@pytest.mark.parametrize("change, problem", [
    (lambda c: c.pop("calibration_dataset"), "missing key calibration_dataset (the loader indexes it)"),
    (lambda c: c["preprocess"].update(mean=[0, 0, 0]),
     "preprocess: unexpected keyword 'mean' (get_transform_base does not take it)"),
    (lambda c: c["session"].update(runtime_options="runtime_options.yaml"),
     "session.runtime_options: 'runtime_options.yaml' is not a mapping (the loader iterates its items)"),
    (lambda c: c["postprocess"].update(formatter={"name": "DetectionYXYX2XYXY", "order": 1}),
     "postprocess.formatter: DetectionYXYX2XYXY does not take 'order'"),
    (lambda c: c["metric"].update(label_offset_pred="coco80to90"),
     "metric.label_offset_pred: 'coco80to90' is not an int, a list of ints or an int -> int mapping"),
    (lambda c: c["model_info"].update(metric_reference={"accuracy_ap[.5:.95]%": 0.2}),
     "model_info.metric_reference.accuracy_ap[.5:.95]%: 0.2 is not a percentage (a fraction under a percent key?)"),
    (lambda c: c["session"].update(model_path="gone.tflite"), "session.model_path: 'gone.tflite' is not in the bundle"),
])
def test_the_checker_finds_what_tis_loader_would_trip_on(zoo_out, change, problem):
    bundle = zoo_out / "ssd-mobilenet-v1/tflite"
    config = _config(bundle)
    change(config)
    assert ti_config.problems(config, bundle) == [problem]


def _ti_resolve(index: Path, models_path: Path) -> dict[str, dict]:
    """What edgeai-benchmark's get_configs_from_file does with a configs index: entries relative to --models_path,
    then a config's bare file names joined with the config's folder."""
    import os

    configs = yaml.safe_load(index.read_text())["configs"]
    resolved = {}
    for model_id, entry in configs.items():
        path = Path(os.path.abspath(os.path.join(models_path, os.path.normpath(entry))))
        param = yaml.safe_load(path.read_text())
        session = param["session"]
        for key, holder in (("model_path", session), ("object_detection:meta_layers_names_list",
                                                       session["runtime_options"])):
            name = holder.get(key)
            if name is not None and name == os.path.basename(name):
                holder[key] = str(path.parent / name)
        resolved[model_id] = param
    return resolved


@pytest.mark.parametrize("name", [b for b in ZOO_BUNDLES if b.endswith("/onnx")])
def test_ti_package_configs_index_resolves_the_model_and_selects_it(zoo_out, name):
    """TI's benchmark runs the bundle as it is: the index finds config.yaml, the bare names resolve to the bundle's
    files, and model_shortlist is within TI's default selection (100)."""
    bundle = zoo_out / name
    (model_id, param), = _ti_resolve(bundle / "ti_package" / "configs.yaml", bundle).items()
    assert model_id == _config(bundle)["session"]["model_id"]
    session = param["session"]
    assert Path(session["model_path"]) == bundle / "model.onnx" and Path(session["model_path"]).is_file()
    meta = session["runtime_options"].get("object_detection:meta_layers_names_list")
    assert meta is None or Path(meta) == bundle / "meta_arch.prototxt"
    assert param["model_info"]["model_shortlist"] <= 100
    run = (bundle / "ti_package" / "RUN.md").read_text()
    assert '--configs_path "$BUNDLE/ti_package/configs.yaml" --models_path "$BUNDLE"' in run
    assert run.count("./run_benchmarks_pc.sh AM68A") == 1 and run.count("./run_benchmarks_evm.sh AM68A") == 1
    outputs = {o["name"] for o in json.loads((bundle / "manifest.json").read_text())["outputs"]}
    assert {"ti_package/configs.yaml", "ti_package/RUN.md"} <= outputs


@pytest.mark.parametrize("name, threshold", [("ssd-resnet34-1200/onnx", 0.05), ("ssd-mobilenet-v1/onnx", 0.3),
                                             ("ssd-mobilenet-v1/tflite", 0.3)])
def test_detection_threshold_is_the_models_reference_in_postprocess(zoo_out, name, threshold):
    """TI filters at postprocess.detection_threshold, else its settings' 0.3: ResNet34-SSD states MLPerf's 0.05,
    SSD-MobileNet its graph's own 0.3; every bundle is selected by TI's default model_shortlist."""
    config = _config(zoo_out / name)
    assert config["postprocess"]["detection_threshold"] == threshold
    for bundle in ZOO_BUNDLES:
        assert _config(zoo_out / bundle)["model_info"]["model_shortlist"] <= 100
