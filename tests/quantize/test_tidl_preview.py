"""The TIDL preview on the reduced MobileNet stand-in: scales, closeness to float on photographs, 16 bits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgezoo.quantize.onnx_layers import quant_layers, tensor_ranges
from edgezoo.quantize.schemes import ScaleType
from edgezoo.quantize.tidl_preview import build_preview, fake_quant_weight, power_of_2_scale
from tests.quantize.quant_helpers import bundle, cosine, photo_inputs


@pytest.fixture(scope="module")
def mobilenet():
    import onnx

    folder = bundle("mobilenet-v1", "onnx")
    model = onnx.load(str(folder / "model.onnx"))
    inputs = photo_inputs(folder)
    layers = quant_layers(model)
    return model, layers, tensor_ranges(model, [layer.name for layer in layers], inputs), inputs


def _logits(model, batch):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def test_layers_are_tidl_fused_groups(mobilenet):
    _model, layers, _ranges, _inputs = mobilenet
    # 27 conv + ReLU6 groups and the logits conv (no activation): TIDL's layers, named by their outputs.
    fused = [layer for layer in layers if layer.ops == ("Conv", "Clip")]
    assert len(fused) == 27 and all(layer.name.endswith("Relu6:0") for layer in fused)
    assert all(layer.weight for layer in fused)
    assert any(layer.name.startswith("MobilenetV1/Logits/Conv2d_1c_1x1") and layer.ops == ("Conv",) for layer in layers)


@pytest.mark.parametrize("scale_type", [ScaleType.NON_POWER_OF_2, ScaleType.POWER_OF_2,
                                        ScaleType.ASYMMETRIC_PER_CHANNEL])
def test_feature_map_scales_are_powers_of_two_covering_the_range(mobilenet, scale_type):
    model, layers, ranges, _ = mobilenet
    preview = build_preview(model, layers, ranges, scale_type)
    assert len(preview.feature_scales) == len(layers)
    for name, scale in preview.feature_scales.items():
        exponent = math.log2(scale)
        assert exponent == round(exponent), (name, scale)
        lo, hi = ranges[name]
        qmax = 255 if lo >= 0 else 127
        # the smallest power of two that does not clip the calibrated range
        assert max(abs(lo), abs(hi)) / scale <= qmax < 2 * max(abs(lo), abs(hi)) / scale


def test_parameter_scales_per_scale_type(mobilenet):
    model, layers, ranges, _ = mobilenet
    from onnx import numpy_helper

    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    layer = next(layer for layer in layers if "Conv2d_1_pointwise" in layer.name)
    w = weights[layer.weight]
    per_tensor = build_preview(model, layers, ranges, ScaleType.NON_POWER_OF_2).weight_scales[layer.name]
    assert per_tensor.shape == (1,) and per_tensor[0] == pytest.approx(np.abs(w).max() / 127)
    pow2 = build_preview(model, layers, ranges, ScaleType.POWER_OF_2).weight_scales[layer.name]
    assert pow2.shape == (1,) and math.log2(pow2[0]) == round(math.log2(pow2[0]))
    per_channel = build_preview(model, layers, ranges, ScaleType.ASYMMETRIC_PER_CHANNEL).weight_scales[layer.name]
    assert per_channel.shape == (w.shape[0],)
    expected = (np.maximum(w.reshape(w.shape[0], -1).max(1), 0) - np.minimum(w.reshape(w.shape[0], -1).min(1), 0)) / 255
    np.testing.assert_allclose(per_channel, expected, rtol=1e-6)
    assert len(set(np.round(per_channel, 12))) > 1  # really one scale per output channel


def test_fake_quant_weight_error_is_half_a_step():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 4, 3, 3)).astype(np.float32)
    for scale_type in (ScaleType.NON_POWER_OF_2, ScaleType.POWER_OF_2, ScaleType.ASYMMETRIC_PER_CHANNEL):
        fq, scales = fake_quant_weight(w, 0, scale_type, 8)
        step = scales.reshape(-1, 1, 1, 1) if scales.size > 1 else scales[0]
        assert np.all(np.abs(fq - w) <= step / 2 + 1e-6)
        assert 0 < np.abs(fq - w).max()


def test_power_of_2_scale():
    assert power_of_2_scale(1.0, 127) == 1 / 64  # 1/127 < 1/64, 1/128 would clip
    assert power_of_2_scale(6.0, 255) == 1 / 32
    assert power_of_2_scale(0.0, 127) == 1.0


def test_preview_close_to_float_on_photographs_and_a_broken_scale_is_not(mobilenet):
    model, layers, ranges, inputs = mobilenet
    preview = build_preview(model, layers, ranges, ScaleType.ASYMMETRIC_PER_CHANNEL)
    sims = [cosine(_logits(model, x), _logits(preview.model, x)) for x in inputs]
    assert min(sims) > 0.9, sims
    # The same preview with one layer's calibrated range 8x too small (its scale 8x too small: clipping):
    # the bound above catches it.
    victim = next(layer.name for layer in layers if "Conv2d_1_pointwise" in layer.name)
    broken_ranges = {**ranges, victim: (ranges[victim][0] / 8, ranges[victim][1] / 8)}
    broken = build_preview(model, layers, broken_ranges, ScaleType.ASYMMETRIC_PER_CHANNEL)
    assert min(cosine(_logits(model, x), _logits(broken.model, x)) for x in inputs) < 0.9


def test_sixteen_bits_everywhere_is_nearly_float(mobilenet):
    model, layers, ranges, inputs = mobilenet
    eight = build_preview(model, layers, ranges, ScaleType.POWER_OF_2)
    sixteen = build_preview(model, layers, ranges, ScaleType.POWER_OF_2, sixteen_bit={layer.name for layer in layers})
    for x in inputs:
        ref = _logits(model, x)
        err8 = np.abs(_logits(eight.model, x) - ref).max()
        err16 = np.abs(_logits(sixteen.model, x) - ref).max()
        assert err16 < err8 / 50, (err16, err8)


def test_keep_float_leaves_that_layer_untouched(mobilenet):
    model, layers, ranges, _ = mobilenet
    name = layers[3].name
    preview = build_preview(model, layers, ranges, ScaleType.POWER_OF_2, keep_float={name})
    assert name not in preview.feature_scales and name not in preview.weight_scales
    assert not any(n.name.startswith(f"{name}__fq") for n in preview.model.graph.node)
