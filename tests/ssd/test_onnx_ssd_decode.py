"""Reading an ONNX SSD's in-graph decoding (priors, coding, thresholds) from the graph alone."""

import numpy as np
import onnx
import pytest

import ssd_models
from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import CodeType, ScoreConverter
from edgezoo.graphs import onnx_model
from edgezoo.ssd.onnx_heads import find_heads
from edgezoo.ssd.onnx_ssd_decode import read_decode
from edgezoo.ssd.onnx_ssd_rewrite import replace_priors
from edgezoo.standins.ssd_resnet34 import SPEC_PARAMS
from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, mlperf_default_boxes


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
    held = sorted((t.quantities, t.scales) for t in decode.prior_tensors)
    assert held == [(("cx", "cy"), (1.0, 1.0)), (("w", "h"), (1.0, 1.0))]


def test_prior_constants_in_another_graph_order_are_told_apart_by_what_they_hold():
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
    held = {t.name: t.quantities for t in decode.prior_tensors}
    assert held == {xy.output[0]: ("cx", "cy"), wh.output[0]: ("w", "h")}


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


def test_separated_heads_yxhw_coding_sigmoid_and_one_prior_constant():
    """Another family: TF-style coding and corner order, one [N, 4] constant, sigmoid scores, SEPARATED heads."""
    from edgezoo.tidl.meta_arch.prior_fit import fit_priors
    from edgezoo.detection.codings import DataLayout

    model, priors = ssd_models.tiny_decoding_ssd()
    model, decode = _read(model)
    heads = find_heads(model)
    assert heads.layout is DataLayout.SEPARATED and heads.num_classes == 5
    np.testing.assert_allclose(decode.priors, priors, atol=1e-7)
    assert decode.code_type is CodeType.CENTER_SIZE_YXHW and decode.box_order == "yxyx"
    assert decode.score_converter is ScoreConverter.SIGMOID and decode.background_label_id == 0
    assert (decode.score_threshold, decode.iou_threshold, decode.per_class, decode.total) == (0.3, 0.45, 50, None)
    fits = fit_priors(decode.priors, [h.grid for h in heads.heads], [h.boxes_per_location for h in heads.heads],
                      heads.layout, (16, 16), (0.1, 0.1, 0.2, 0.2))
    assert fits[0].param.min_size == (4.0,) and fits[0].param.aspect_ratio == (2.0,) and fits[0].param.flip
    assert fits[1].param.min_size == (8.0,) and fits[1].param.max_size == (12.0,)
    assert [f.param.step for f in fits] == [2.0, 4.0] and max(f.deviation for f in fits) < 1e-6
