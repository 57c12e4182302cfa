"""The check on the zoo's stand-ins (published structure): it must find the ResNet cut by itself."""

from __future__ import annotations

import pytest

from edgezoo.standins import StandinVariant, get_builder
from edgezoo.tidl.check import check_model


@pytest.mark.parametrize("builder", ["resnet50-onnx-opset8", "resnet50-onnx-opset11"])
def test_resnet50_onnx_standin_cut(tmp_path, builder):
    path = tmp_path / "resnet50_v1.onnx"
    get_builder(builder).build(path, StandinVariant.REDUCED, 0)
    report = check_model(path)
    assert report.cut == ["resnet_model/dense/BiasAdd:0"]
    assert {f.op for f in report.unsupported} == {"Softmax", "ArgMax"}


def test_mobilenet_onnx_standin_cut_at_logits(tmp_path):
    path = tmp_path / "mobilenet_v1_1.0_224.onnx"
    get_builder("mobilenet-v1-onnx").build(path, StandinVariant.REDUCED, 0)
    assert check_model(path).cut == ["MobilenetV1/Logits/SpatialSqueeze:0"]


@pytest.mark.fullsize
def test_resnet50_onnx_full_size_standin_cut(tmp_path):
    path = tmp_path / "resnet50_v1.onnx"
    get_builder("resnet50-onnx-opset11").build(path, StandinVariant.FULL, 0)
    report = check_model(path)
    assert report.cut == ["resnet_model/dense/BiasAdd:0"] and report.nodes > 100


@pytest.mark.parametrize("naming", ["pytorch", "numbered"])
def test_resnet34_ssd_check_proposes_the_heads_and_names_the_export(naming, capsys):
    """MLPerf's real structure: the heads' reshape targets come from Shape of the feature maps; the cut must be the
    12 heads alone (not the feature maps) and the tail TIDL's detection layer."""
    import onnx

    import ssd_models
    from edgezoo.cli import main

    path = ssd_models.reduced_standin(**({} if naming == "pytorch" else {"naming": naming}))
    model = onnx.load(path)
    heads = [n.output[0] for n in model.graph.node if n.op_type == "Conv" and
             [list(a.ints) for a in n.attribute if a.name == "strides"][0] == [3, 3]]
    report = check_model(path)
    assert sorted(report.cut) == sorted(heads) and len(heads) == 12
    assert report.unsupported == [] and report.detection_tail > 50
    assert main(["check", str(path), "--target", "tidl"]) == 0
    out = capsys.readouterr().out
    assert f"edgezoo export --graph {path} --to onnx --meta-arch ssd" in out and "detection layer" in out
