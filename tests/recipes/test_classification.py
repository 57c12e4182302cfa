"""The classification recipes end to end on the REDUCED stand-ins: export -> bundle, contents checked.

Recipes covered: 'frozen-graph-to-tflite' (resnet50 -> tflite), 'onnx-fix-and-cut' (resnet50 -> onnx with the card's
cut; mobilenet -> onnx with cut: auto), 'published-tflite' (mobilenet -> tflite).
"""

from __future__ import annotations

import json

import pytest

from edgezoo import zoo
from edgezoo.core.errors import TensorNameError
from edgezoo.export.api import export_model
from edgezoo.graphs import onnx_model, tflite_model
from edgezoo.graphs.runners import load_runner
from edgezoo.standins import StandinVariant
from edgezoo.zoo.schema import Target


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One stand-in cache for the module (each stand-in is built once, not per test)."""
    return tmp_path_factory.mktemp("standin-cache")


@pytest.fixture()
def cache(shared_cache, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture(scope="module")
def bundles(shared_cache, tmp_path_factory):
    """The four classification exports, run once."""
    out = tmp_path_factory.mktemp("out")
    results = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEZOO_CACHE", str(shared_cache))
        for model, target in (("resnet50", "tflite"), ("resnet50", "onnx"), ("mobilenet", "tflite"),
                              ("mobilenet", "onnx")):
            results[(model, target)] = export_model(zoo.get_card(model), target, out_dir=out, standin=True,
                                                    variant=StandinVariant.REDUCED, offline=True)
    return results


def _bundle_files(result) -> set[str]:
    return {p.name for p in result.bundle.iterdir()}


def test_frozen_graph_to_tflite_resnet50_cut_at_logits(bundles):
    """'frozen-graph-to-tflite': the classic conversion, verified against the frozen graph."""
    r = bundles[("resnet50", "tflite")]
    assert r.passed and r.recipe == "frozen-graph-to-tflite"
    assert r.bundle.name == "tflite" and r.bundle.parent.name == "resnet50-v1.5"
    assert _bundle_files(r) == {"model.tflite", "runtime_options.yaml", "config.yaml", "manifest.json",
                                "verify.json", ".edgezoo-output.json"}
    model = r.bundle / "model.tflite"
    ops = set(tflite_model.op_names(model))
    assert not ops & {"SOFTMAX", "ARG_MAX"}, ops  # the tail TIDL cannot run is gone
    assert "CONV_2D" in ops and "FULLY_CONNECTED" in ops
    runner = load_runner(model)
    assert [o.shape for o in runner.outputs] == [(1, 1001)]
    assert [i.shape for i in runner.inputs] == [(1, 224, 224, 3)]
    assert r.cut == ["resnet_model/dense/BiasAdd"] and r.cut_reason == "card"
    checks = {c.name: c for c in r.report.checks}
    # logits compared with the original's internal logits tensor, and top-1 through the label offset
    assert checks["resnet_model/dense/BiasAdd: max_abs_error"].value < 1e-3
    assert checks["top1_agreement"].value == 1.0
    assert r.report.metrics["classification"]["distinct_top1"] >= 5


def test_onnx_fix_and_cut_resnet50_batch_1_only_logits(bundles):
    """'onnx-fix-and-cut' with the card's explicit cut."""
    r = bundles[("resnet50", "onnx")]
    assert r.passed and r.recipe == "onnx-fix-and-cut"
    model = onnx_model.load(r.bundle / "model.onnx")
    assert onnx_model.output_names(model) == ["resnet_model/dense/BiasAdd:0"]
    (inp,) = onnx_model.graph_inputs(model)
    assert onnx_model.info(inp).shape == (1, 3, 224, 224)  # batch fixed, NCHW kept
    out = onnx_model.info(model.graph.output[0])
    assert out.shape == (1, 1001)
    assert not {n.op_type for n in model.graph.node} & {"Softmax", "ArgMax"}
    assert r.cut_reason == "card"
    manifest = json.loads((r.bundle / "manifest.json").read_text())
    assert manifest["recipe"]["params"]["batch"] == 1
    assert isinstance(manifest["recipe"]["params"]["simplified"], bool)
    runtime = (r.bundle / "config.yaml").read_text()
    assert "session_name: onnxrt" in runtime and "data_layout: NCHW" in runtime


def test_onnx_fix_and_cut_mobilenet_auto_cut_from_check(bundles):
    """cut: auto -> whatever `check --target tidl` proposes, said in the cut reason and the notes."""
    r = bundles[("mobilenet", "onnx")]
    assert r.passed
    assert r.cut_reason == "check --target tidl"
    assert any(n.startswith("check --target tidl") for n in r.notes)
    model = onnx_model.load(r.bundle / "model.onnx")
    assert onnx_model.output_names(model) == r.cut
    assert onnx_model.info(onnx_model.graph_inputs(model)[0]).shape[0] == 1
    # whatever was cut, nothing TIDL cannot run is left at the end
    from edgezoo.tidl.check import check_model

    assert check_model(r.bundle / "model.onnx").unsupported == []
    # if simplification was dropped, the manifest says so and the kept model passed
    simplified = json.loads((r.bundle / "manifest.json").read_text())["recipe"]["params"]["simplified"]
    assert simplified or any("onnxslim result dropped" in n for n in r.notes) or not any("onnxslim" in n
                                                                                         for n in r.notes)


def test_published_tflite_mobilenet_verified_against_frozen_graph(bundles, cache):
    """'published-tflite': the published .tflite as is, byte for byte, verified against the frozen graph."""
    from edgezoo import fetch

    r = bundles[("mobilenet", "tflite")]
    assert r.passed and r.cut_reason == "published as is"
    card = zoo.get_card("mobilenet")
    published = fetch.fetch_member(card, "mobilenet_v1_1.0_224.tgz", "mobilenet_v1_1.0_224.tflite", standin=True,
                                   variant=StandinVariant.REDUCED, offline=True)
    assert (r.bundle / "model.tflite").read_bytes() == published.read_bytes()
    assert r.report.original.endswith("mobilenet_v1_1.0_224_frozen.pb")
    checks = {c.name: c.value for c in r.report.checks}
    assert checks["MobilenetV1/Predictions/Reshape_1: max_abs_error"] < 1e-4
    logits = r.report.metrics["informational"]["logits MobilenetV1/Logits/SpatialSqueeze"]
    assert 0 < logits["max_abs_error"] < 1e-2 and logits["cosine"] > 0.9999


def test_wrong_output_name_in_params_suggests_close_names(cache, tmp_path):
    card = zoo.get_card("resnet50")
    with pytest.raises(TensorNameError) as info:
        export_model(card, Target.TFLITE, out_dir=tmp_path, standin=True, variant=StandinVariant.REDUCED,
                     params={"outputs": ["resnet_model/dense/BiasAd"]})
    assert "resnet_model/dense/BiasAdd" in str(info.value)
    assert not (tmp_path / "resnet50-v1.5").exists() or not any((tmp_path / "resnet50-v1.5").iterdir())


def test_tolerance_override_makes_parity_fail_and_keeps_bundle_apart(cache, tmp_path):
    """A tolerance no conversion meets (max_abs_error 0: TFLite is not bit-exact): parity fails, the bundle goes to
    tflite.failed/, figures say by how much."""
    card = zoo.get_card("resnet50")
    r = export_model(card, Target.TFLITE, out_dir=tmp_path, standin=True, variant=StandinVariant.REDUCED,
                     tolerances={"max_abs_error": 0.0})
    assert not r.passed
    assert r.bundle.name == "tflite.failed" and not (tmp_path / "resnet50-v1.5" / "tflite").exists()
    verify = json.loads((r.bundle / "verify.json").read_text())
    assert verify["passed"] is False and verify["standin"] is True
    failed = [c for c in verify["checks"] if not c["passed"]]
    assert failed and all(c["name"].endswith("max_abs_error") for c in failed)
    assert failed[0]["limit"] == 0.0 and failed[0]["value"] > 0


def test_tolerance_out_of_range_is_refused_before_any_work(cache, tmp_path):
    """min_cosine 1.5 used to give 'parity FAILED' and a .failed bundle; it is bad input (exit 2), nothing written."""
    from edgezoo.core.errors import EdgezooError

    with pytest.raises(EdgezooError, match=r"tolerance min_cosine=1.5 is out of range: .* \[-1, 1\]") as exc:
        export_model(zoo.get_card("resnet50"), Target.TFLITE, out_dir=tmp_path, standin=True,
                     variant=StandinVariant.REDUCED, tolerances={"min_cosine": 1.5})
    assert exc.value.exit_code == 2 and list(tmp_path.iterdir()) == []


def test_onnx_fix_and_cut_on_the_opset8_file(cache, tmp_path):
    """The first published resnet50_v1.onnx is opset 8 (IR 4: initializers also listed as inputs)."""
    r = export_model(zoo.get_card("resnet50"), Target.ONNX, out_dir=tmp_path, standin=True,
                     variant=StandinVariant.REDUCED, params={"source": "resnet50_v1.onnx"})
    assert r.passed
    model = onnx_model.load(r.bundle / "model.onnx")
    assert onnx_model.opset(model) == 8
    assert onnx_model.output_names(model) == ["resnet_model/dense/BiasAdd:0"]
    assert [onnx_model.info(i).shape for i in onnx_model.graph_inputs(model)] == [(1, 3, 224, 224)]
    manifest = json.loads((r.bundle / "manifest.json").read_text())
    assert [s["file"] for s in manifest["sources"]] == ["resnet50_v1.onnx"]


@pytest.mark.fullsize
def test_full_size_mobilenet_onnx_auto_cut_passes(tmp_path):
    """Full widths: more float noise at the logits; the simplified model is kept only if it still passes."""
    r = export_model(zoo.get_card("mobilenet"), Target.ONNX, out_dir=tmp_path, standin=True,
                     variant=StandinVariant.FULL, offline=True)
    assert r.passed, r.report.render()
    assert r.cut == ["MobilenetV1/Logits/SpatialSqueeze:0"]
    assert r.model_file.size > 16e6  # 4.2 M parameters, as published
    assert r.report.metrics["classification"]["distinct_top1"] >= 5
