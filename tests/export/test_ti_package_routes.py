"""`--ti-package` on every export route (a zoo card, --graph, a TF OD API SSD, --meta-arch ssd): one pipeline writes
the package, so no route ignores the flag. Real exports on small stand-ins; the package is read back from disk."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml

import ssd_models
from edgezoo.cli import main
from edgezoo.recipes import get_recipe
from edgezoo.zoo import get_card
from tests import tiny_models
from tests.od_api_helpers import export_folder

R34 = get_card("ssd-resnet34-1200").preprocess


def _zoo(tmp_path: Path) -> tuple[list[str], Path]:
    return (["mobilenet", "--to", "tflite", "--standin", "--standin-variant", "reduced", "--offline"],
            tmp_path / "mobilenet-v1" / "tflite")


def _graph(tmp_path: Path) -> tuple[list[str], Path]:
    (tmp_path / "src").mkdir()
    pb = tiny_models.build_tf_pb(tmp_path / "src" / "user_classifier.pb")
    shape = f"1x{tiny_models.H}x{tiny_models.W}x{tiny_models.C_IN}"
    return (["--graph", str(pb), "--inputs", f"x:{shape}", "--outputs", "dense/BiasAdd", "--to", "tflite",
             "--param", "task_type=classification", "--param", "input_mean=127.5", "--param", "input_scale=0.0078125"],
            tmp_path / "user_classifier" / "tflite")


def _od_api(tmp_path: Path) -> tuple[list[str], Path]:
    folder = export_folder("classes3")
    return ["--graph", str(folder), "--to", "onnx"], tmp_path / folder.resolve().name / "onnx"


def _onnx_ssd(tmp_path: Path) -> tuple[list[str], Path]:
    model = ssd_models.reduced_standin()
    return (["--graph", str(model), "--to", "onnx", "--meta-arch", "ssd", "--param", f"mean={list(R34.mean)}",
             "--param", f"scale={list(R34.scale)}"], tmp_path / model.stem / "onnx")


@pytest.mark.parametrize("route, recipe", [(_zoo, "published-tflite"), (_graph, "generic-pb-to-tflite"),
                                           (_od_api, "od-api-ssd-onnx"), (_onnx_ssd, "generic-onnx-ssd-meta-arch")],
                         ids=["card", "graph", "od-api", "meta-arch"])
def test_every_route_writes_the_ti_package(tmp_path, capsys, route, recipe):
    argv, bundle = route(tmp_path)
    assert main(["export", *argv, "--out", str(tmp_path), "--ti-package"]) == 0, capsys.readouterr().err
    manifest = json.loads((bundle / "manifest.json").read_text())
    config = yaml.safe_load((bundle / "config.yaml").read_text())
    run = f"{config['session']['model_id']}_{config['session']['session_name']}"
    folder = bundle / "ti_package" / run
    model = config["session"]["model_path"]
    # the packaged model is the bundle's, byte for byte, and param.yaml points at it inside the package
    assert (folder / "model" / model).read_bytes() == (bundle / model).read_bytes()
    param = yaml.safe_load((folder / "param.yaml").read_text())
    assert param["session"]["model_path"] == f"model/{model}" and param["session"]["run_dir"] == run
    with tarfile.open(bundle / "ti_package" / f"{run}.tar.gz") as tar:
        assert {"param.yaml", f"model/{model}", "artifacts"} <= set(tar.getnames())
    outputs = {o["name"] for o in manifest["outputs"]}
    assert {f"ti_package/{run}/param.yaml", f"ti_package/{run}.tar.gz"} <= outputs
    assert manifest["ti_config"]["loadable_by_ti_tools"] is True
    # whatever the route, the manifest names the registered recipe that made the bundle
    assert manifest["recipe"]["name"] == recipe and get_recipe(recipe).name == recipe
    extra = [name for name in ("meta_arch.prototxt",) if (bundle / name).exists()]
    for name in extra:  # an ONNX SSD's prototxt travels with its model (runtime options name it relative to it)
        assert (folder / "model" / name).read_bytes() == (bundle / name).read_bytes()
