"""Recipe 'ssd-mobilenet-onnx-caffe-meta' on the REDUCED stand-in: exact priors, valid prototxt, measured parity."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ssd_helpers import reduced_onnx_export

RECIPE = "ssd-mobilenet-onnx-caffe-meta"


@pytest.fixture(scope="module")
def exported():
    return reduced_onnx_export()


def test_priors_equal_the_tf_anchors(exported):
    route = exported.verify.metrics["route"]
    assert route["priors_max_abs_diff_vs_tf_anchors"] < 1e-6
    assert route["heads"] == 7 and route["priors"] == 1917 + 361 and route["dummy_priors"] == 361
    assert route["interpolated_size_error_from_int_max_size"] == 0.0


def test_prototxt_reads_back_and_validates_against_the_model(exported):
    from edgezoo.graphs import onnx_model
    from edgezoo.detection.codings import CodeType, DataLayout, ScoreConverter
    from edgezoo.tidl.meta_arch.prototxt import load_meta_arch
    from edgezoo.tidl.meta_arch.validate import check_meta_arch

    meta = load_meta_arch(exported.extra_files["meta_arch.prototxt"])
    ssd = meta.single_ssd()
    model = onnx_model.load(exported.model)
    assert check_meta_arch(meta, model) == [] or all(p.severity == "warning" for p in check_meta_arch(meta, model))
    assert ssd.score_converter is ScoreConverter.SIGMOID and ssd.data_layout is DataLayout.SEPARATED
    dop = ssd.detection_output_param
    assert dop.code_type is CodeType.CENTER_SIZE_YXHW and dop.num_classes == 91 and dop.keep_top_k == 100
    assert dop.confidence_threshold == pytest.approx(0.3) and dop.nms_param.nms_threshold == pytest.approx(0.6)
    p0a, p0b, p1 = ssd.prior_box_param[:3]
    assert p0a.min_size == (30.0,) and not p0a.aspect_ratio
    assert p0b.min_size[0] == pytest.approx(60.0) and p0b.aspect_ratio == (2.0, 0.5) and p0b.flip is False
    assert p1.max_size == (150.0,) and p1.aspect_ratio[3] == pytest.approx(0.3333, abs=1e-6)  # not 1/3
    assert all(p.variance == (0.1, 0.1, 0.2, 0.2) for p in ssd.prior_box_param)
    assert list(ssd.output) == onnx_model.output_names(model)


def test_model_interface(exported):
    from edgezoo.graphs import onnx_model

    model = onnx_model.load(exported.model)
    assert onnx_model.opset(model) == 10
    (inp,) = onnx_model.graph_inputs(model)
    assert inp.name == "normalized_input_image_tensor"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, 300, 300]
    assert exported.runtime_options["object_detection:meta_arch_type"] == 3
    assert exported.runtime_options["object_detection:meta_layers_names_list"] == "meta_arch.prototxt"


def test_parity_of_the_prototxt_semantics_and_of_onnx_runtime(exported):
    report = exported.verify
    assert report.passed, report.render()
    names = {c.name for c in report.checks}
    assert {"matched_fraction_of_original", "onnx_runtime: matched_fraction_of_original"} <= names
    assert report.metrics["detection"]["total_original"] >= 20


def test_dummy_priors_never_fire(exported):
    """The head-0b dummy prior's class logits are exactly the dummy bias whatever the image."""
    from edgezoo import zoo
    from edgezoo.datasets import images
    from edgezoo.preprocessing.card import preprocess
    from edgezoo.graphs.runners import load_runner
    from edgezoo.tidl.meta_arch.ssd_caffe_priors import DUMMY_LOGIT

    card = zoo.get_card("ssd-mobilenet-v1")
    head = "BoxPredictor_0b/ClassPredictor/caffe_order"
    runner = load_runner(exported.model, outputs=[head])
    x = preprocess(images.photographs(("astronaut",))[0][1], card.preprocess, dtype="float32", layout="NCHW")
    logits = runner.run({runner.inputs[0].name: x}, [head])[head]
    assert logits.shape == (1, 3 * 91, 19, 19)
    np.testing.assert_array_equal(logits[0, :91], DUMMY_LOGIT)


def _parity_with(exported, change):
    from dataclasses import replace

    from edgezoo import zoo
    from edgezoo.datasets.images import verification_images
    from edgezoo.tidl.meta_arch.prototxt import load_meta_arch
    from edgezoo.verify.detection import compare_detectors, detection_tolerances
    from edgezoo.verify.detectors import meta_arch_detector, od_api_detector
    from tests.ssd_helpers import reduced_source

    card = zoo.get_card("ssd-mobilenet-v1")
    meta = load_meta_arch(exported.extra_files["meta_arch.prototxt"])
    ssd = meta.single_ssd()
    params = [change(p) if k >= 2 else p for k, p in enumerate(ssd.prior_box_param)]
    detector = meta_arch_detector(exported.model, meta.with_ssd(replace(ssd, prior_box_param=tuple(params))),
                                  card.preprocess)
    original = od_api_detector(reduced_source() / "frozen_inference_graph.pb", card.preprocess, card, 0.3)
    original.domain.slots = 100
    return compare_detectors(original, detector, verification_images(), detection_tolerances(card, None))


def test_priors_out_of_head_order_fail_parity(exported):
    """Ratios 2 and 0.5 swapped in layers 1-5: the priors no longer belong to their channels -> FAIL."""
    from dataclasses import replace

    report = _parity_with(exported, lambda p: replace(p, aspect_ratio=(0.5, 2.0) + p.aspect_ratio[2:]))
    assert not report.passed and "matched_fraction_of_original" in {c.name for c in report.failures()}


def test_one_third_instead_of_0_3333_is_tiny_but_real(exported):
    """The usual Caffe way (aspect_ratio 2, 3 with flip) gives 1/3 where TF has 0.3333: priors move by ~1e-5."""
    from dataclasses import replace

    from edgezoo.tidl.meta_arch.priors import tidl_priors
    from edgezoo.tidl.meta_arch.prototxt import load_meta_arch

    layer1 = load_meta_arch(exported.extra_files["meta_arch.prototxt"]).single_ssd().prior_box_param[2]
    usual = replace(layer1, aspect_ratio=(2.0, 3.0), flip=True)
    diff = np.abs(tidl_priors(layer1, (10, 10), (300, 300)) - tidl_priors(usual, (10, 10), (300, 300))).max()
    assert 1e-6 < diff < 1e-4
    report = _parity_with(exported, lambda p: replace(p, aspect_ratio=(2.0, 3.0), flip=True))
    assert report.passed
