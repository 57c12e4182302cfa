"""The parity engine on tiny models: exact conversions pass, a planted error fails with the figure that shows it."""

from __future__ import annotations

import dataclasses

import pytest

import tiny_models as tm
from edgezoo import zoo
from edgezoo.core.errors import EdgezooError, TensorNameError
from edgezoo.datasets.images import random_images
from edgezoo.verify.engine import verify_models


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("engine")
    pb = tm.build_tf_pb(d / "m.pb")
    return {"pb": pb, "tflite": tm.build_tflite(pb, d / "m.tflite", ["dense/BiasAdd"]),
            "onnx": tm.build_onnx(d / "m.onnx"), "bad": tm.build_onnx(d / "bad.onnx", perturb=0.5),
            "cut": tm.build_onnx(d / "cut.onnx", with_tail=False)}


@pytest.fixture(scope="module")
def images():
    return random_images(3, seed=5)


def test_cut_tflite_against_frozen_graph_compares_logits(models, images):
    r = verify_models(models["pb"], models["tflite"], images=images)
    assert r.passed and r.task == "classification"
    assert r.metrics["pairs"] == [{"original": "dense/BiasAdd", "converted": "dense/BiasAdd",
                                   "matched_by": "internal tensor"}]
    stats = r.metrics["outputs"]["dense/BiasAdd"]
    assert stats["max_abs_error"] < 1e-4 and stats["cosine"] > 0.99999
    assert r.metrics["classification"]["top1_agreement"] == 1.0 and r.inputs == [n for n, _ in images]


def test_nchw_onnx_against_nhwc_graph(models, images):
    r = verify_models(models["pb"], models["cut"], images=images)
    assert r.passed and r.metrics["outputs"]["dense/BiasAdd:0"]["max_abs_error"] < 1e-4


def test_planted_error_fails(models, images):
    r = verify_models(models["onnx"], models["bad"], images=images)
    assert not r.passed
    failed = {c.name for c in r.failures()}
    assert "probs:0: max_abs_error" in failed
    assert r.metrics["outputs"]["probs:0"]["max_abs_error"] > 1e-3


def test_tensors_task_and_tolerance_override(models, images):
    r = verify_models(models["onnx"], models["bad"], images=images, task="tensors",
                      tolerances={"max_abs_error": 0.5, "min_cosine": 0.9})
    assert r.passed and r.task == "tensors" and "classification" not in r.metrics
    with pytest.raises(EdgezooError, match="unknown tolerance"):
        verify_models(models["onnx"], models["bad"], images=images, tolerances={"max_abs": 1})


def test_card_preprocessing_and_tolerances(models, images):
    card = zoo.get_card("mobilenet-v1")
    card = dataclasses.replace(
        card, preprocess=dataclasses.replace(card.preprocess, resize=20, crop=tm.H),
        labels=dataclasses.replace(card.labels, num_classes=tm.CLASSES), tolerances={"max_abs_error": 1e-12})
    r = verify_models(models["pb"], models["tflite"], card=card, images=images)
    assert r.metrics["preprocess"]["source"] == "card" and r.metrics["preprocess"]["crop"] == tm.H
    assert r.metrics["tolerances"]["max_abs_error"] == 1e-12
    assert not r.passed  # float round-off is above a 1e-12 tolerance: the card's tolerance was applied


def test_pairs_by_name_shape_and_explicit(models, images):
    r = verify_models(models["pb"], models["onnx"], images=images)
    assert {(p["original"], p["converted"], p["matched_by"]) for p in r.metrics["pairs"]} == {
        ("probs", "probs:0", "name"), ("ArgMax", "ArgMax:0", "name")}
    r = verify_models(models["cut"], models["tflite"], images=images, pairs={"dense/BiasAdd": "dense/BiasAdd"})
    assert r.passed and r.metrics["pairs"][0]["matched_by"] == "given"
    with pytest.raises(TensorNameError, match="did you mean"):
        verify_models(models["cut"], models["tflite"], images=images, pairs={"dense/BiasAd": "dense/BiasAdd"})


def test_inputs_without_counterpart_are_an_error(models, images, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["a"], ["b"])], "g",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 7])],
                          [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 7])])
    path = tmp_path / "other.onnx"
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    with pytest.raises(EdgezooError, match="no output of the converted model has a counterpart"):
        verify_models(models["cut"], path, images=images)
