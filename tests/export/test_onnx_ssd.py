"""`edgezoo export --graph model.onnx --to onnx --meta-arch ssd` on ResNet34-SSD-like stand-ins (real ONNX Runtime,
real verification on photographs)."""

import json
import math

import numpy as np
import onnx
import pytest
import yaml

import ssd_models
from edgezoo.cli import main
from edgezoo.tidl.meta_arch.prototxt import load_meta_arch
from edgezoo.zoo import get_card

CARD = get_card("ssd-resnet34-1200")
# The stand-ins are calibrated for MLPerf's ImageNet normalisation
NORM = ["--param", f"mean={list(CARD.preprocess.mean)}", "--param", f"scale={list(CARD.preprocess.scale)}"]


def _export(tmp_path, model, *extra):
    return main(["export", "--graph", str(model), "--to", "onnx", "--meta-arch", "ssd", "--out", str(tmp_path),
                 *NORM, *extra])


def test_published_structure_exports_a_verified_bundle(tmp_path, capsys):
    model = ssd_models.reduced_standin()
    assert _export(tmp_path, model) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    bundle = tmp_path / model.stem / "onnx"
    assert {p.name for p in bundle.iterdir()} == {"model.onnx", "meta_arch.prototxt", "runtime_options.yaml",
                                                   "config.yaml", "manifest.json", "verify.json",
                                                   ".edgezoo-output.json"}
    ssd = load_meta_arch(bundle / "meta_arch.prototxt").single_ssd()
    convs = [n.output[0] for n in onnx.load(model).graph.node if n.op_type == "Conv" and n.output[0] in
             set(ssd.box_input + ssd.class_input)]
    assert len(ssd.box_input) == 6 and len(convs) == 12 and all(t.startswith("Conv_") for t in ssd.box_input)
    dop = ssd.detection_output_param
    # read from the graph: NMS score 0.05, IoU 0.5, overall 200; top_k every prior
    assert (dop.confidence_threshold, dop.nms_param.nms_threshold, dop.keep_top_k) == (0.05, 0.5, 200)
    assert dop.nms_param.top_k == 15130
    assert [p.min_size[0] for p in ssd.prior_box_param] == [84, 180, 396, 612, 828, 1044]
    verify = json.loads((bundle / "verify.json").read_text())
    checks = {c["name"]: c["value"] for c in verify["checks"]}
    assert checks["original_detections"] > 50 and checks["matched_fraction_of_original"] == 1.0
    assert checks["model_onnx_matched_fraction_of_original"] == 1.0
    manifest = json.loads((bundle / "manifest.json").read_text())
    deviation = manifest["recipe"]["params"]["priors"]["deviation_per_head"]
    assert max(deviation[:5]) < 1e-5 and deviation[5] == pytest.approx(1044 * math.sqrt(2) / 1200 - 1, abs=1e-6)
    assert len(manifest["recipe"]["params"]["priors"]["folded_boxes"]) == 2  # the clamped 2:1 / 1:2 boxes
    options = yaml.safe_load((bundle / "runtime_options.yaml").read_text())
    assert options["object_detection:top_k"] == 15130 and options["object_detection:meta_arch_type"] == 3
    assert "folded into the box heads" in out
    from edgezoo.tidl import ti_config

    config = yaml.safe_load((bundle / "config.yaml").read_text())
    assert ti_config.problems(config, bundle) == [] and manifest["ti_config"]["loadable_by_ti_tools"] is True
    assert config["preprocess"]["resize"] == [1200, 1200] and config["session"]["input_data_layout"] == "NCHW"


def test_older_naming_and_symbolic_input_needs_inputs(tmp_path, capsys):
    model = ssd_models.reduced_standin(naming="numbered")
    assert _export(tmp_path, model) == 2
    err = capsys.readouterr().err
    assert "no static shape" in err and "--inputs image:1x3xHxW" in err and "Traceback" not in err
    assert not (tmp_path / model.stem).exists()
    assert _export(tmp_path, model, "--inputs", "image:1x3x1200x1200") == 0
    ssd = load_meta_arch(tmp_path / model.stem / "onnx" / "meta_arch.prototxt").single_ssd()
    assert all(t.isdigit() for t in ssd.box_input)  # tensor names, not the node names


def test_boxes_in_another_order_are_permuted_into_caffe_order(tmp_path, capsys):
    model = ssd_models.reduced_standin(box_order="interpolated-last")
    assert _export(tmp_path, model) == 0
    out = capsys.readouterr().out
    assert "head channels permuted to Caffe's prior order: head 0: boxes [0, 3, 1, 2]" in out
    manifest = json.loads((tmp_path / model.stem / "onnx" / "manifest.json").read_text())
    assert manifest["recipe"]["params"]["priors"]["permuted_heads"] == [0, 1, 2, 3, 4, 5]
    checks = {c["name"]: c["value"] for c in json.loads((tmp_path / model.stem / "onnx" / "verify.json")
                                                             .read_text())["checks"]}
    assert checks["matched_fraction_of_original"] == 1.0 and checks["model_onnx_matched_fraction_of_original"] == 1.0


def test_crowded_outputs_exact_by_default_and_top_k_200_says_its_loss(tmp_path, capsys):
    model = ssd_models.reduced_standin(crowded=True)
    assert _export(tmp_path / "exact", model) == 0
    verify = json.loads((tmp_path / "exact" / model.stem / "onnx" / "verify.json").read_text())
    checks = {c["name"]: c["value"] for c in verify["checks"]}
    assert checks["matched_fraction_of_original"] == 1.0 and checks["original_detections"] >= 600
    capsys.readouterr()
    code = _export(tmp_path / "speed", model, "--top-k", "200")
    out = capsys.readouterr().out
    manifest_dir = tmp_path / "speed" / model.stem
    loss = json.loads(next(manifest_dir.glob("onnx*/manifest.json")).read_text())["recipe"]["params"][
        "speed_setting_parity"]
    assert loss["exact"]["matched_fraction"] == 1.0 and 0.5 < loss["chosen"]["matched_fraction"] < 1.0
    assert f"they reproduce {loss['chosen']['matched_fraction']:.1%}" in out
    assert code in (0, 1)  # passes or not against the tolerances: the loss is said either way


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    from onnx import TensorProto, helper
    plain = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                       [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])), plain)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model" * 10)
    cases = [
        ([str(plain)], "no convolution reads the image input"),
        ([str(garbage)], "garbage.onnx"),
        ([str(tmp_path / "missing.onnx")], "missing.onnx"),
        ([str(ssd_models.reduced_standin()), "--top-k", "0"], "--top-k: 0 is out of range"),
        ([str(ssd_models.reduced_standin()), "--param", "top_k=-3"], "--param top_k: -3 is out of range"),
        ([str(ssd_models.reduced_standin()), "--max-detections", "5"], "does not apply to --meta-arch ssd"),
        ([str(ssd_models.reduced_standin()), "--outputs", "bboxes"], "give no --outputs"),
        ([str(ssd_models.reduced_standin()), "--param", "mean=[1, 2]"], "expected 1 or 3 values"),
    ]
    for args, message in cases:
        assert main(["export", "--graph", *args, "--to", "onnx", "--meta-arch", "ssd", "--out",
                     str(tmp_path / "out")]) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_head_with_two_scales_is_split_into_one_head_per_scale(tmp_path, capsys):
    model = ssd_models.reduced_standin(box_order="two-scales")
    assert _export(tmp_path, model) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "split into one head per scale" in out and "head 0: boxes [[0], [1, 2, 3]]" in out
    bundle = tmp_path / model.stem / "onnx"
    ssd = load_meta_arch(bundle / "meta_arch.prototxt").single_ssd()
    assert len(ssd.box_input) == len(ssd.class_input) == 7
    # TIDL's priors of the two heads are the graph's: the min square alone, then the sqrt(84 * 180) square with
    # its 2:1 / 1:2 boxes (the builder's sizes, computed here from MLPerf's s_k)
    first, second = ssd.prior_box_param[:2]
    assert first.min_size == (84,) and first.max_size == () and first.aspect_ratio == ()
    assert second.min_size[0] == pytest.approx(math.sqrt(84 * 180), abs=1e-3) and second.aspect_ratio == (2.0,)
    assert second.flip
    from edgezoo.standins.ssd_resnet34 import SPEC_PARAMS, _two_scales
    from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, mlperf_default_boxes, tidl_priors

    spec = DefaultBoxSpec.from_params(SPEC_PARAMS)
    grid = spec.feature_sizes()[0]
    built = _two_scales(mlperf_default_boxes(spec), spec)[:4 * grid[0] * grid[1]].reshape(4, *grid, 4)
    for param, boxes in ((first, [0]), (second, [1, 2, 3])):  # graph boxes in Caffe's order
        expected = built[boxes].transpose(1, 2, 0, 3)
        assert np.abs(tidl_priors(param, grid, (1200, 1200)) - expected).max() < 1e-5
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert max(manifest["recipe"]["params"]["priors"]["deviation_per_head"][:6]) < 1e-5
    checks = {c["name"]: c["value"] for c in json.loads((bundle / "verify.json").read_text())["checks"]}
    assert checks["original_detections"] > 50 and checks["matched_fraction_of_original"] == 1.0
    assert checks["model_onnx_matched_fraction_of_original"] == 1.0


def test_label_offset_is_read_from_the_graph(tmp_path):
    from edgezoo.ssd.onnx_heads import find_heads
    from edgezoo.graphs.onnx_model import infer_shapes
    from edgezoo.ssd.onnx_ssd_decode import read_decode
    from onnx import numpy_helper

    model = onnx.load(ssd_models.reduced_standin())
    # MLPerf's graph: labels = NMS class column (background dropped) + 1 = Caffe's class index
    assert read_decode(infer_shapes(model), find_heads(infer_shapes(model))).label_offset == 0
    # the same graph with 0-based foreground labels: one less than Caffe's class index
    nodes = {o: n for n in model.graph.node for o in n.output}
    add = nodes[nodes["labels"].input[0]]
    const = nodes[add.input[1]]
    assert numpy_helper.to_array(const.attribute[0].t) == 1
    const.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array(0, np.int64)))
    assert read_decode(infer_shapes(model), find_heads(infer_shapes(model))).label_offset == -1
