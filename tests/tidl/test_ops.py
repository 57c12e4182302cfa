"""Operator rules in isolation (NodeView built by hand): the TFLite constraints and the meta-architecture op."""

from __future__ import annotations

import numpy as np
import pytest

from edgezoo.tidl.ops import NodeView, onnx_verdict, tflite_verdict


def view(op, shapes, consts, attrs=None, opset=13):
    return NodeView(op, attrs or {}, shapes, consts, [None], False, False, opset)


@pytest.mark.parametrize("axes,ok", [([1, 2], True), ([3], False)])
def test_tflite_mean_is_a_global_pool_only(axes, ok):
    v = view("MEAN", [(1, 7, 7, 32), (len(axes),)], [None, np.array(axes)])
    assert tflite_verdict(v).supported == ok


def test_tflite_pad_resize_concat_argmax():
    hw = np.array([[0, 0], [1, 1], [1, 1], [0, 0]])
    chan = np.array([[0, 0], [0, 0], [0, 0], [0, 2]])
    assert tflite_verdict(view("PAD", [(1, 8, 8, 4), (4, 2)], [None, hw])).supported
    assert "height and width" in tflite_verdict(view("PAD", [(1, 8, 8, 4), (4, 2)], [None, chan])).reason
    assert tflite_verdict(view("RESIZE_BILINEAR", [(1, 8, 8, 4), (2,)], [None, np.array([32, 32])])).supported
    assert not tflite_verdict(view("RESIZE_BILINEAR", [(1, 8, 8, 4), (2,)], [None, np.array([24, 24])])).supported
    assert not tflite_verdict(view("CONCATENATION", [(1, 4), (1, 4)], [None, None], {"axis": 0})).supported
    assert tflite_verdict(view("ARG_MAX", [(1, 8, 8, 21), ()], [None, np.array(3)])).supported
    assert not tflite_verdict(view("ARG_MAX", [(1, 1001), ()], [None, np.array(1)])).supported


def test_tflite_postprocess_goes_through_the_meta_architecture():
    v = tflite_verdict(view("TFLite_Detection_PostProcess", [(1, 1917, 4), (1, 1917, 91), (1917, 4)],
                            [None, None, np.zeros((1917, 4))]))
    assert not v.supported and "meta_arch_type 1" in v.reason
    assert "not in TIDL's supported TFLite operator list" in tflite_verdict(view("GATHER_ND", [(1, 4)], [None])).reason


def test_onnx_custom_domain_and_reduce_axes():
    assert "custom domain" in onnx_verdict(view("NonMaxSuppression", [(1, 4)], [None]), "com.microsoft").reason
    assert onnx_verdict(view("ReduceMax", [(1, 4, 8, 8)], [None], {"axes": [2]})).supported
    assert not onnx_verdict(view("ReduceMax", [(1, 4, 8, 8)], [None], {"axes": [1]})).supported
    mean = onnx_verdict(view("ReduceMean", [(1, 4, 8, 8)], [None], {"axes": [1]}))
    assert not mean.supported and "standalone ReduceMean" in mean.reason
    assert not onnx_verdict(view("Pad", [(1, 4, 8, 8), (8,)], [None, np.zeros(8, np.int64)],
                                 {"mode": b"reflect"})).supported
    assert onnx_verdict(view("Max", [(1, 4), (1, 4)], [None, None])).supported
    assert "3 inputs" in onnx_verdict(view("Max", [(1, 4)] * 3, [None] * 3)).reason
