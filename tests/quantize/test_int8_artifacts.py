"""The pre-quantized artifacts, made by the real converters on the reduced MobileNet stand-in and calibrated on
photographs: integer tensors, scales as TIDL's scale types want them, outputs close to float."""

from __future__ import annotations


import numpy as np
import pytest

from edgezoo.quantize.onnx_qdq import qdq_scales, quantize_onnx_qdq
from tests.quantize.quant_helpers import bundle, cosine, photo_inputs


def _ort(path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def qdq(tmp_path_factory):
    folder = bundle("mobilenet-v1", "onnx")
    inputs = photo_inputs(folder)
    out = tmp_path_factory.mktemp("qdq")
    quantize_onnx_qdq(folder / "model.onnx", out / "qdq.onnx", inputs)
    quantize_onnx_qdq(folder / "model.onnx", out / "pow2.onnx", inputs, power_of_2=True)
    return folder, inputs, out / "qdq.onnx", out / "pow2.onnx"


def _weights_and_scales(path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return model, inits


def test_qdq_weights_int8_per_channel_symmetric(qdq):
    folder, _, path, _ = qdq
    import onnx
    from onnx import numpy_helper

    model, inits = _weights_and_scales(path)
    float_weights = {i.name: i for i in onnx.load(str(folder / "model.onnx")).graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    dq = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    assert len(convs) == 28
    for conv in convs:
        w_dq = dq[conv.input[1]]
        q, scale, zero = (inits[name] for name in w_dq.input)
        assert q.dtype == np.int8 and scale.shape == (q.shape[0],)  # one scale per output channel
        assert not np.any(zero)  # symmetric
        w = numpy_helper.to_array(float_weights[w_dq.input[0].removesuffix("_quantized")])
        np.testing.assert_allclose(scale, np.abs(w.reshape(w.shape[0], -1)).max(1) / 127, rtol=1e-5)


def test_qdq_close_to_float_on_photographs_and_a_broken_scale_is_not(qdq, tmp_path):
    import onnx
    from onnx import numpy_helper

    folder, inputs, path, _ = qdq
    ref, got = _ort(folder / "model.onnx"), _ort(path)
    assert min(cosine(ref(x), got(x)) for x in inputs) > 0.9
    # one activation scale 8x too small (the tensor clips at 1/8 of its range): the bound above catches it
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and "Conv2d_1_pointwise" in n.input[0]
             and n.input[0] not in inits)
    scale = inits[q.input[1]]
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) / 8, scale.name))
    onnx.save(model, str(tmp_path / "broken.onnx"))
    broken = _ort(tmp_path / "broken.onnx")
    assert min(cosine(ref(x), broken(x)) for x in inputs) < 0.9


def test_power_of_2_scales_are_powers_of_two_and_still_close(qdq):
    folder, inputs, _, path = qdq
    scales = qdq_scales(_weights_and_scales(path)[0])
    assert len(scales) > 50
    for name, values in scales.items():
        exponents = np.log2(values.astype(np.float64))
        assert np.all(exponents == np.round(exponents)), name
    ref, got = _ort(folder / "model.onnx"), _ort(path)
    # coarser than free scales (up to 2x the step), still the same picture
    assert min(cosine(ref(x), got(x)) for x in inputs) > 0.8


def test_power_of_2_bias_scale_is_input_times_weight_scale(qdq):
    _, _, _, path = qdq
    model, inits = _weights_and_scales(path)
    dq = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    x_scale, w_scale, b_scale = (inits[dq[name].input[1]] for name in conv.input)
    np.testing.assert_array_equal(b_scale, (x_scale * w_scale).astype(np.float32))


def test_tflite_int8_is_integer_and_close_to_float(tmp_path):
    from edgezoo.graphs import tflite_model
    from edgezoo.bundle.reader import read_bundle
    from edgezoo.quantize.tflite_int8 import quantize_tflite_int8

    folder = bundle("mobilenet-v1", "tflite")
    inputs = photo_inputs(folder)
    out = quantize_tflite_int8(read_bundle(folder), inputs, tmp_path / "int8.tflite")
    interp = tflite_model.load_interpreter(out, num_threads=1)
    conv_weights = [d for d in interp.get_tensor_details() if "weights" in d["name"].lower() or "Conv2D" in d["name"]]
    assert conv_weights and any(d["dtype"] == np.int8 for d in conv_weights)
    per_channel = [d for d in conv_weights if len(d["quantization_parameters"]["scales"]) > 1]
    assert per_channel  # TF's converter quantizes conv weights per channel
    ref = tflite_model.load_interpreter(folder / "model.tflite", num_threads=1)

    def run(it, x):
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])

    pairs = [(run(ref, x).ravel(), run(interp, x).ravel()) for x in inputs]
    # The output is the stand-in's softmax, flat (top probability 0.1-0.25) and int8 with steps of 1/256: the
    # bounds are those of such an output, and still far from what a wrong scale gives (random: cosine ~0.1).
    sims = [cosine(f, q) for f, q in pairs]
    assert np.mean(sims) > 0.75 and max(sims) < 1.0, sims
    assert sum(int(np.argmax(f)) in np.argsort(-q)[:5] for f, q in pairs) >= 3
