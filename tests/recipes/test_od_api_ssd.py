"""Own TF OD API SSDs (`export --graph ... --pipeline-config ...`) on stand-ins that vary what users vary.

Each stand-in is a small OD-API-structured frozen graph with calibrated weights whose anchors are TF ops written
independently of edgezoo.detection.anchors; the expected anchor counts below come from the variant's own description
(feature maps of stride 8, 16, ... as SAME convolutions give them), not from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgezoo.standins.od_api_ssd import VARIANTS
from tests.od_api_helpers import export_folder, exported

TFLITE_VARIANTS = ["classes3", "classes20", "input320", "nonsquare", "no_reduce", "softmax", "fpn"]
ONNX_VARIANTS = ["classes3", "nonsquare", "softmax", "fpn"]


def expected_anchors(variant: str) -> int:
    """Feature maps at strides 8, 16, ... (ceil: SAME convolutions) x boxes per location."""
    v = VARIANTS[variant]
    total = 0
    for k, boxes in enumerate(v.boxes_per_location()):
        stride = 8 * 2 ** k
        total += math.ceil(v.size[0] / stride) * math.ceil(v.size[1] / stride) * boxes
    return total


def passed_export(variant: str, target: str):
    """The variant's export, which must pass parity on a real number of detections."""
    result = exported(variant, target)
    assert result.passed, result.report.render()
    assert result.report.metrics["detection"]["total_original"] >= 20  # a handful of detections proves little
    return result


@pytest.mark.parametrize("variant", TFLITE_VARIANTS)
def test_tflite_parity_and_what_the_op_carries(variant):
    from edgezoo.graphs import tflite_model
    from edgezoo.ssd import ssd_surgery

    v = VARIANTS[variant]
    result = passed_export(variant, "tflite")
    surgery = result.report.metrics["surgery"]
    assert surgery["anchors"] == expected_anchors(variant)
    assert surgery["anchors_max_abs_diff_vs_graph"] <= 1e-6  # checked against the graph's own anchor tensor
    attrs = ssd_surgery.read_postprocess_ops(result.bundle / "model.tflite")[0]["attributes"]
    assert attrs["num_classes"] == v.num_classes and attrs["max_detections"] == 4000
    (inp,) = tflite_model.inputs(tflite_model.load_interpreter(result.bundle / "model.tflite"))
    assert inp.shape == (1, *v.size, 3)
    assert {p.name for p in result.bundle.iterdir()} >= {"model.tflite", "runtime_options.yaml", "config.yaml",
                                                         "manifest.json", "verify.json"}


def test_preprocessing_is_read_off_the_graph():
    """mobilenet-style 2/255 x - 1 and the FPN stand-in's per-channel mean subtraction, found without a card."""
    from edgezoo.standins.od_api_ssd import RESNET_MEAN

    mobilenet = exported("classes3", "tflite").report.metrics["surgery"]["preprocess"]
    np.testing.assert_allclose(mobilenet["mean"], [127.5] * 3, rtol=1e-5)
    np.testing.assert_allclose(mobilenet["scale"], [2 / 255] * 3, rtol=1e-5)
    fpn = exported("fpn", "tflite").report.metrics["surgery"]["preprocess"]
    np.testing.assert_allclose(fpn["mean"], RESNET_MEAN, rtol=1e-5)
    np.testing.assert_allclose(fpn["scale"], [1.0] * 3, rtol=1e-5)


@pytest.mark.parametrize("variant", ONNX_VARIANTS)
def test_onnx_priors_equal_the_anchors_and_parity_both_ways(variant):
    from edgezoo.graphs import onnx_model
    from edgezoo.detection.codings import ScoreConverter
    from edgezoo.tidl.meta_arch.prototxt import load_meta_arch
    from edgezoo.tidl.meta_arch.validate import check_meta_arch

    v = VARIANTS[variant]
    result = passed_export(variant, "onnx")
    report = result.report
    names = {c.name for c in report.checks}
    assert {"matched_fraction_of_original", "onnx_runtime: matched_fraction_of_original"} <= names
    route = report.metrics["route"]
    assert route["priors_max_abs_diff_vs_tf_anchors"] < 1e-6
    assert route["priors"] - route["dummy_priors"] == expected_anchors(variant)
    meta = load_meta_arch(result.bundle / "meta_arch.prototxt")
    ssd = meta.single_ssd()
    dop = ssd.detection_output_param
    assert dop.num_classes == v.num_classes + 1 and dop.nms_param.top_k == route["priors"]  # every prior
    assert dop.keep_top_k == 100 and dop.confidence_threshold == pytest.approx(v.score_threshold)
    assert ssd.score_converter is (ScoreConverter.SOFTMAX if v.score_converter == "SOFTMAX" else ScoreConverter.SIGMOID)
    model = onnx_model.load(result.bundle / "model.onnx")
    assert all(p.severity == "warning" for p in check_meta_arch(meta, model))
    (inp,) = onnx_model.graph_inputs(model)
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, *v.size]
    import yaml

    from edgezoo.tidl import ti_config

    config = yaml.safe_load((result.bundle / "config.yaml").read_text())
    assert ti_config.problems(config, result.bundle) == []  # TI's loader takes it, prototxt named inline
    assert config["session"]["runtime_options"]["object_detection:meta_layers_names_list"] == "meta_arch.prototxt"


def test_logit_scale_is_folded_into_the_class_heads():
    """softmax stand-in: logit_scale 2; the ONNX class head outputs are the frozen graph's logits / 2."""
    from edgezoo.ssd import ssd_surgery
    from edgezoo.graphs.runners import load_runner

    result = exported("softmax", "onnx")
    v = VARIANTS["softmax"]
    pb = export_folder("softmax") / "frozen_inference_graph.pb"
    tf_runner = load_runner(pb, outputs=["BoxPredictor_3/ClassPredictor/BiasAdd"])
    onnx_runner = load_runner(result.bundle / "model.onnx", outputs=["BoxPredictor_3/ClassPredictor/caffe_order"])
    image = np.random.default_rng(0).integers(0, 256, (1, *v.size, 3), dtype=np.uint8)
    tf_logits = tf_runner.run({"image_tensor": image}, ["BoxPredictor_3/ClassPredictor/BiasAdd"])
    tf_logits = next(iter(tf_logits.values()))  # [1, 2, 2, 6 * 7] (row, col, box, class)
    x = ((image.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
    got = next(iter(onnx_runner.run({ssd_surgery.INPUT_NAME: x}, ["BoxPredictor_3/ClassPredictor/caffe_order"])
                    .values()))  # [1, 6 * 7, 2, 2] in Caffe prior order
    columns = v.num_classes + 1
    # Layer 3 (scale 0.95, integral max_size 128): Caffe order = ratio 1, interpolated, then 2, 0.5, 3, 0.3333.
    order = [0, 5, 1, 2, 3, 4]
    want = tf_logits[0].reshape(2, 2, 6, columns)[:, :, order, :] / v.logit_scale
    np.testing.assert_allclose(got[0].reshape(6, columns, 2, 2).transpose(2, 3, 0, 1), want, atol=2e-4, rtol=1e-4)


def test_heads_are_found_by_structure_not_names():
    """Renamed heads and swapped concat names: still found; box vs class told apart although 3 + 1 == 4 columns."""
    from edgezoo.graphs import tf_graph
    from edgezoo.ssd import od_api_graph

    graph_def = tf_graph.load_graph_def(export_folder("classes3") / "frozen_inference_graph.pb")
    mapping = {n.name: n.name.replace("BoxPredictor_", "Head").replace("BoxEncodingPredictor", "A")
               .replace("ClassPredictor", "B") for n in graph_def.node}
    mapping.update({"concat": "concat_1", "concat_1": "concat"})
    for node in graph_def.node:
        node.name = mapping[node.name]
        node.input[:] = [("^" if i.startswith("^") else "") + mapping[i.lstrip("^").split(":")[0]]
                         + (":" + i.split(":")[1] if ":" in i else "") for i in node.input]
    heads = od_api_graph.find_heads(graph_def)
    assert heads.box_concat == "concat_1" and heads.class_concat == "concat"
    assert heads.box_heads[0] == "Head0/A/BiasAdd" and heads.class_heads[3] == "Head3/B/BiasAdd"
    assert od_api_graph.normalized_input(graph_def) == "Preprocessor/sub"
    assert od_api_graph.anchor_tensor(graph_def, expected_anchors("classes3")) == \
        "MultipleGridAnchorGenerator/Concatenate/concat"


def test_wrong_anchors_fail_parity():
    """The parity check is not trivial: the same TFLite with anchors out of order (interpolated box first) FAILS."""
    from edgezoo.detection.pipeline_config import load_pipeline_config
    from edgezoo.ssd import ssd_surgery
    from edgezoo.datasets.images import verification_images
    from edgezoo.recipes.od_api_ssd import analyse, original_detector
    from edgezoo.recipes.ssd_mobilenet import resolve_options
    from edgezoo.verify.detection import compare_detectors, detection_tolerances
    from edgezoo.verify.detectors import tflite_postprocess_detector

    folder = export_folder("no_reduce")
    cfg = load_pipeline_config(folder / "pipeline.config")
    ssd = analyse(folder / "frozen_inference_graph.pb", cfg, [])
    planted = ssd.anchors.center.reshape(-1, 6, 4)[:, [5, 0, 1, 2, 3, 4]].reshape(-1, 4)
    params = resolve_options({}, cfg, []).postprocess_params(cfg)
    result = ssd_surgery.build_tflite_graph(ssd.graph_def, normalized_input=ssd.normalized, input_size=ssd.size,
                                            anchors_center=planted, params=params, heads=ssd.heads)
    workdir = export_folder("no_reduce").parent / "planted"
    workdir.mkdir(exist_ok=True)
    model = ssd_surgery.convert_to_tflite(result.graph_def, workdir / "model.tflite", ssd.size, workdir)
    report = compare_detectors(original_detector(ssd), tflite_postprocess_detector(model, ssd.preprocess),
                               verification_images(), detection_tolerances(None, None))
    assert not report.passed and "matched_fraction_of_original" in {c.name for c in report.failures()}
