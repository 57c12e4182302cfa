"""Users' own SSDs as the real exporters write them (tests/structures: NVIDIA/MLPerf-style PyTorch SSD300,
torchvision, TF OD API TF1 and TF2), through `export --graph`: the decoding and limits read by value and checked by
behaviour, the head finder on what exporters write, verified exports, and refusals that say what to do.

The readers run on every available structure (each is materialised once per process: seconds); full exports with
their two-model verification run on the NMS-limit case by default and on the other families behind fullsize."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import CodeType, DataLayout
from edgezoo.export.od_api import export_od_api
from edgezoo.export.onnx_ssd import export_onnx_ssd
from edgezoo.graphs import onnx_model
from edgezoo.ssd.onnx_heads import find_heads
from edgezoo.ssd.onnx_ssd_decode import read_decode
from edgezoo.ssd.onnx_ssd_input import BATCH1_WRAPPER, prepare_input
from edgezoo.tidl.meta_arch.prototxt import load_meta_arch
from tests.structures import STRUCTURES, materialized
from tests.structures.build import refill_spec
from tests.structures.catalog import Family, available

ONNX_FAMILIES = (Family.NVIDIA_SSD300, Family.TORCHVISION)
NMS_LIMIT_CASE = "nvidia-ssd300-r18-onnxnms"


def _names(*families, batched: bool | None = None) -> list:
    out = []
    for name in available():
        s = STRUCTURES[name]
        if s.family not in families:
            continue
        raw = s.manifest["facts"].get("batch1_wrapper") is False
        if batched is not None and raw == batched:
            continue
        # VGG16 (ssd300) takes a minute to calibrate on 2 cores: with the full-size tests
        heavy = s.fullsize or "vgg16" in name
        out.append(pytest.param(name, marks=[pytest.mark.fullsize] if heavy else [], id=name))
    return out


def _normalisation(name: str) -> dict:
    """--param mean/scale in 0-255 pixels for what the structure's input takes: (p * scale - mean) / std."""
    spec = refill_spec(STRUCTURES[name])[2]
    mean = [m / spec.scale for m in spec.mean]
    scale = [spec.scale / s for s in spec.std]
    return {"mean": mean, "scale": scale}


def _read(name: str):
    model = onnx_model.infer_shapes(onnx_model.load(materialized(name)))
    cut = prepare_input(model, name)
    heads = find_heads(cut.model, where=name)
    return cut, heads, read_decode(cut.model, heads, name, image=cut.size)


@pytest.mark.parametrize("name", _names(*ONNX_FAMILIES, batched=True))
def test_the_decoding_and_its_limits_are_read_from_every_pytorch_export(name):
    """What the exporter wrote, read by value and confirmed by the graph's own behaviour (planted detections)."""
    facts = STRUCTURES[name].manifest["facts"]
    post = facts["postprocess"]
    cut, heads, decode = _read(name)
    assert heads.num_priors == post["priors"] == len(decode.priors)
    assert heads.num_classes == facts["classes"]
    assert (decode.score_threshold, decode.iou_threshold) == (post["score_threshold"], post["iou_threshold"])
    # the overall cap: TopK(k = Reshape(Min(200, n), [1])) is 200 (never the reshape's 1), a Slice [:N] is N
    assert decode.total == post["max_total"]
    assert decode.code_type is CodeType.CENTER_SIZE and decode.box_order == "xyxy"
    assert decode.fit_error < 1e-5 and decode.background_label_id == 0 and decode.label_offset == 0
    # the priors are real priors: positive sizes, centres on the image (a step that does not divide the image
    # puts the last column a little past its edge)
    assert np.all(decode.priors[:, 2:] > 0) and np.all((decode.priors[:, :2] > 0) & (decode.priors[:, :2] < 1.05))
    if STRUCTURES[name].family is Family.TORCHVISION:
        # GeneralizedRCNNTransform cut off: the converted model takes its normalised 4-D tensor, decoding in pixels
        assert cut.cut is not None and cut.layout == "NCHW" and cut.size == tuple(facts["inputs"]["image"][2:])
        assert decode.units == (float(cut.size[1]), float(cut.size[0]))
        assert heads.layout is DataLayout.SEPARATED  # Reshape[N,A,K,H,W] -> Transpose(0,3,4,1,2) -> Reshape
        assert decode.variances == tuple(1 / w for w in post["box_coder_weights"])
        assert decode.candidates == post["topk_candidates"] and decode.per_class is None
        mean, scale = cut.pixels(*cut.original_default())
        assert cut.original_default() == ((0.0, 0.0, 0.0), (1 / 255,) * 3)  # torchvision takes [0, 1]
        if "ssdlite" in name:  # (x - 0.5) / 0.5
            assert np.allclose(mean, 127.5) and np.allclose(scale, 1 / 127.5)
        else:  # ssd300_vgg16: x - (0.48235, 0.45882, 0.40784), std 1/255 (the Caffe VGG's pixel means)
            assert np.allclose(mean, (123.0, 117.0, 104.0), atol=1e-2) and np.allclose(scale, 1.0, atol=1e-4)
    else:
        assert cut.cut is None and heads.layout is DataLayout.INTERLEAVED
        assert decode.variances == (0.1, 0.1, 0.2, 0.2)
        in_if = "If" in facts["ops"]
        assert decode.per_class == (None if in_if else post["max_per_class"])


@pytest.mark.parametrize("name", _names(Family.TORCHVISION, batched=False))
def test_torchvisions_list_of_images_export_is_refused_with_the_wrapper(name):
    model = onnx_model.infer_shapes(onnx_model.load(materialized(name)))
    with pytest.raises(RecipeError) as err:
        prepare_input(model, name)
    assert "without a batch dimension" in str(err.value) and err.value.hint.endswith(BATCH1_WRAPPER)


@pytest.fixture(scope="module")
def nms_limit_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("nms-limit")
    path = materialized(NMS_LIMIT_CASE)
    result = export_onnx_ssd(path, out_dir=out, params=_normalisation(NMS_LIMIT_CASE))
    return path, result


@pytest.mark.skipif(NMS_LIMIT_CASE not in available(), reason="structure data not present")
def test_the_nms_limit_case_reads_200_and_verifies_everything_the_original_keeps(nms_limit_bundle):
    _, result = nms_limit_bundle
    assert result.passed, result.report.render()
    bundle = result.bundle
    dop = load_meta_arch(bundle / "meta_arch.prototxt").single_ssd().detection_output_param
    assert dop.keep_top_k == 200 and dop.confidence_threshold == 0.05 and dop.nms_param.nms_threshold == 0.5
    options = yaml.safe_load((bundle / "runtime_options.yaml").read_text())
    assert options["object_detection:keep_top_k"] == 200
    det = result.report.metrics["detection"]
    checks = {c["name"]: c["value"] for c in json.loads((bundle / "verify.json").read_text())["checks"]}
    # the original's complete output: 200 per photograph, every one matched, nothing set aside
    assert det["total_original"] >= 1000 and det["total_outside_original"] == 0
    assert det["total_original_beyond_converted_limits"] == 0
    assert checks["matched_fraction_of_original"] >= 0.99 and checks["model_onnx_matched_fraction_of_original"] == 1
    assert checks["max_box_error"] < 1e-4


@pytest.mark.skipif(NMS_LIMIT_CASE not in available(), reason="structure data not present")
def test_the_old_misread_limit_fails_verification_and_chosen_it_states_its_cost(nms_limit_bundle, tmp_path):
    """keep_top_k 1 -- what reading the Reshape's shape constant gave -- compares 1 of 200 and fails with the figure;
    the same limit chosen by the user is compared within it and its cost said."""
    import dataclasses

    from edgezoo.datasets.images import verification_images
    from edgezoo.tidl.meta_arch.prototxt import save_meta_arch
    from edgezoo.verify.meta_arch import verify_with_prototxt
    from edgezoo.zoo.schema import Preprocess

    path, result = nms_limit_bundle
    meta = load_meta_arch(result.bundle / "meta_arch.prototxt")
    ssd = meta.single_ssd()
    wrong = meta.with_ssd(dataclasses.replace(ssd, detection_output_param=dataclasses.replace(
        ssd.detection_output_param, keep_top_k=1)))
    prototxt = save_meta_arch(wrong, tmp_path / "meta_arch.prototxt")
    norm = _normalisation(NMS_LIMIT_CASE)
    spec = Preprocess(resize=(300, 300), resize_mode="direct", interpolation="linear", crop=None, color="RGB",
                      mean=tuple(norm["mean"]), scale=tuple(norm["scale"]), layout="NCHW")
    images = verification_images(count_random=0)[:2]  # two photographs: 400 of the original's detections
    report = verify_with_prototxt(result.bundle / "model.onnx", prototxt, original=path, preprocess=spec,
                                  images=images)
    det = report.metrics["detection"]
    assert not report.passed
    assert det["total_matched"] <= 2 and det["total_original"] >= 300
    fraction = {c.name: c.value for c in report.checks}["matched_fraction_of_original"]
    assert fraction < 0.01 and "matched_fraction_of_original" in report.failure_summary()
    chosen = verify_with_prototxt(result.bundle / "model.onnx", prototxt, original=path, preprocess=spec,
                                  chosen={"--keep-top-k": 1}, images=images)
    assert chosen.passed
    cost = chosen.metrics["detection"]["chosen_limits_cost"]
    assert cost["left_out"] == det["total_original"] - det["total_converted"] and cost["fraction_left_out"] > 0.99


@pytest.mark.fullsize
@pytest.mark.parametrize("name", [n for n in _names(*ONNX_FAMILIES, batched=True)
                                  if n.values[0] != NMS_LIMIT_CASE])
def test_every_pytorch_export_exports_and_verifies(name, tmp_path):
    result = export_onnx_ssd(materialized(name), out_dir=tmp_path, params=_normalisation(name))
    det = result.report.metrics["detection"]
    checks = {c.name: c.value for c in result.report.checks}
    assert checks["model_onnx_matched_fraction_of_original"] == 1.0  # model.onnx's own outputs: the original's
    if STRUCTURES[name].family is Family.TORCHVISION:
        # torchvision clips boxes to the image before NMS, TIDL's detection layer cannot: the report says where
        assert any("touch the image border" in n for n in result.report.notes) or result.passed
        unclipped = result.report.metrics["without_the_originals_clipping"]
        assert unclipped["matched_fraction_of_original"] >= 0.99  # the conversion alone
        if not result.passed:  # the clip's cost: the user is told how to accept it knowingly
            figure = min(checks["matched_fraction_of_original"], checks["matched_fraction_of_converted"])
            hint = f"--tolerance min_matched_fraction={int(figure * 100) / 100:.2f}"
            assert any(hint in n for n in result.report.notes), result.report.notes
    else:
        assert result.passed and checks["matched_fraction_of_original"] >= 0.99, result.report.render()
    assert det["total_original_beyond_converted_limits"] == 0


# One export of each kind by default: a 1x1 last map through both routes, weight-shared heads, a TF2 SavedModel.
# Every other OD API structure and route is exhaustive (`pytest -m exhaustive`); the figures of all of them are
# in benchmarks/RESULTS.md (benchmarks/bench_own_ssd_families.py).
_OD_API_DEFAULT = {("tf1-ssd_mobilenet_v1_coco", "tflite"), ("tf1-ssd_mobilenet_v1_coco", "onnx"),
                   ("tf1-ssd_mobilenet_v1_ppn_coco", "onnx"), ("tf2-ssd_mobilenet_v2_fpnlite_320x320_coco17", "tflite")}


def _od_api_exports() -> list:
    out = []
    for param in _names(Family.OD_API_TF1, Family.OD_API_TF2):
        name = param.values[0]
        if name.endswith(("-tflite_graph", "-tflite_savedmodel")):
            continue  # the exporters' TFLite-only files: covered by their refusals
        routes = {r.value for r in STRUCTURES[name].routes}
        for target in ("tflite", "onnx"):
            if target == "onnx" and "onnx+prototxt" not in routes:
                continue
            marks = [*param.marks] + ([] if (name, target) in _OD_API_DEFAULT else [pytest.mark.exhaustive])
            out.append(pytest.param(name, target, marks=marks, id=f"{target}-{name}"))
    return out


@pytest.mark.fullsize
@pytest.mark.parametrize(("name", "target"), _od_api_exports())
def test_od_api_exports_tf1_and_tf2_verify(name, target, tmp_path):
    path = materialized(name)
    result = export_od_api(path, None, target, out_dir=tmp_path)
    checks = {c.name: c.value for c in result.report.checks}
    assert result.passed and checks["matched_fraction_of_original"] >= 0.99, result.report.render()


@pytest.mark.parametrize("name", [n for n in _names(*ONNX_FAMILIES, batched=True)
                                  if "batchednms" in n.values[0] or "ssdlite320-c21" in n.values[0]])
def test_check_proposes_the_heads_export_takes(name):
    """`check` cuts at the heads only when export reads the decoding: NonMaxSuppression inside an If, torchvision's
    preprocessing cut off first."""
    from edgezoo.tidl.check import check_model

    report = check_model(materialized(name))
    _, heads, _ = _read(name)
    assert report.cut == [t for h in heads.heads for t in (h.box_tensor, h.class_tensor)]
    assert any("decodable SSD tail" in n for n in report.notes) and report.detection_tail > 0
    if STRUCTURES[name].family is Family.TORCHVISION:
        assert any("in-graph preprocessing cut off" in n for n in report.notes)
        assert not any(f.op == "Resize" for f in report.unsupported)  # the cut-off transform is not TIDL's problem


@pytest.mark.parametrize("name", _names(Family.TORCHVISION, batched=False))
def test_check_says_why_it_cannot_propose_the_heads(name):
    from edgezoo.tidl.check import check_model

    report = check_model(materialized(name))
    assert report.detection_tail == 0
    assert any("cannot take it as it is" in n and "batch-1 wrapper" in n for n in report.notes), report.notes


@pytest.mark.fullsize  # materialising these calibrates the whole detector (1.5-2 min each on 2 cores)
@pytest.mark.parametrize("name", [n for n in available() if n.endswith(("-tflite_graph", "-tflite_savedmodel"))])
def test_the_exporters_tflite_only_files_are_refused_with_the_folder_to_give(name, tmp_path):
    """tflite_graph.pb (export_tflite_ssd_graph) and export_tflite_graph_tf2's SavedModel end in a post-processing TF
    cannot run: nothing to verify against, so the export folder is what to give."""
    from edgezoo.core.errors import ModelFileError

    with pytest.raises(ModelFileError) as err:
        export_od_api(materialized(name), None, "tflite", out_dir=tmp_path)
    assert "nothing to verify" in str(err.value) and "export folder" in err.value.hint or \
        "exporter_main_v2.py writes" in err.value.hint
    assert not any(tmp_path.iterdir())
