"""Reading an ONNX SSD's in-graph decoding (priors, coding, thresholds) from the graph alone."""

import numpy as np
import onnx
import pytest

import ssd_models
from edgezoo.detection.onnx_ssd_decode import read_decode, replace_priors
from edgezoo.detection.priors import DefaultBoxSpec, mlperf_default_boxes
from edgezoo.detection.prototxt import CodeType, ScoreConverter
from edgezoo.errors import RecipeError
from edgezoo.graphs import onnx_model
from edgezoo.graphs.onnx_heads import find_heads
from edgezoo.standins.ssd_resnet34 import SPEC_PARAMS


def _read(model):
    model = onnx_model.infer_shapes(model)
    return model, read_decode(model, find_heads(model), "test.onnx")


def test_published_structure_gives_mlperf_decoding():
    model, decode = _read(onnx.load(ssd_models.reduced_standin()))
    want = mlperf_default_boxes(DefaultBoxSpec.from_params(SPEC_PARAMS))  # computed from the spec, not the graph
    np.testing.assert_allclose(decode.priors, want, atol=1e-7)
    assert decode.variances == (0.1, 0.1, 0.2, 0.2) and decode.code_type is CodeType.CENTER_SIZE
    assert decode.box_order == "xyxy" and decode.fit_error < 1e-5
    assert decode.score_converter is ScoreConverter.SOFTMAX and decode.background_label_id == 0
    assert (decode.score_threshold, decode.iou_threshold, decode.per_class, decode.total) == (0.05, 0.5, 200, 200)
    assert [t.columns for t in decode.prior_tensors] == [(0, 1), (2, 3)]


def test_prior_constants_in_another_graph_order_are_told_apart_by_the_fit():
    model = onnx.load(ssd_models.reduced_standin())
    consts = [n for n in model.graph.node if n.op_type == "Constant" and list(n.attribute[0].t.dims) == [1, 15130, 2]]
    xy, wh = consts
    # move the sizes' Constant before the centres' (torch may emit them in any order)
    nodes = list(model.graph.node)
    nodes.remove(wh)
    nodes.insert(0, wh)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _, decode = _read(model)
    assert [t.name for t in decode.prior_tensors] == [xy.output[0], wh.output[0]]


def test_replace_priors_rewrites_the_constants():
    model, decode = _read(onnx.load(ssd_models.reduced_standin()))
    new = decode.priors * 0.5
    out = replace_priors(model, decode, new)
    _, again = _read(out)
    np.testing.assert_allclose(again.priors, new, atol=1e-7)


def test_graph_without_nms_is_a_recipe_error():
    model = ssd_models.tiny_ssd()  # heads + Softmax, no decoding
    model = onnx_model.infer_shapes(model)
    with pytest.raises(RecipeError, match="no NonMaxSuppression after the box heads"):
        read_decode(model, find_heads(model), "tiny.onnx")
