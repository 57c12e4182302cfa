"""SSD bundles: what TIDL's meta-architecture decodes stays float; the TFLite SSD is quantized with its
TFLite_Detection_PostProcess kept (same options, float on the dequantized heads)."""

from __future__ import annotations

import shutil

from edgezoo.cli import main
from tests.quantize.quant_helpers import bundle, photo_folder


def test_onnx_ssd_quantizes_backbone_and_heads_only(tmp_path, capsys):
    import onnx

    from edgezoo.quantize.onnx_layers import meta_arch_heads

    src = tmp_path / "out" / "ssd-mobilenet-v1" / "onnx"
    shutil.copytree(bundle("ssd-mobilenet-v1", "onnx"), src)
    assert main(["quantize", str(src), "--calibration", str(photo_folder()), "--frames", "4",
                 "--scheme", "onnx-qdq"]) == 0
    from edgezoo.quantize.onnx_layers import backbone_nodes

    float_model = onnx.load(str(src / "model.onnx"))
    heads = meta_arch_heads(src)
    assert len(heads) == 14
    backbone = backbone_nodes(float_model, heads)
    tail = {n.name for n in float_model.graph.node} - backbone
    assert len(tail) > 10  # the ONNX decoding tail (reshapes, box decoding, scores)
    model = onnx.load(str(src.parent / "onnx-qdq" / "model.onnx"))
    producer = {out: node for node in model.graph.node for out in node.output}
    quantized = [producer[n.input[0]].name for n in model.graph.node
                 if n.op_type == "QuantizeLinear" and n.input[0] in producer]
    # every head is quantized (TIDL runs the convs that make them in 8 bits) ...
    assert {producer[n.input[0]].output[0] for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.input[0] in producer} >= set(heads)
    # ... and no tensor of the tail is: the meta-architecture decodes the heads in float
    assert quantized and not set(quantized) & tail


def test_tflite_int8_ssd_keeps_the_postprocess_op(tmp_path, capsys):
    import numpy as np
    import yaml

    from edgezoo.graphs import tflite_model
    from edgezoo.ssd import ssd_surgery
    from tests.quantize.quant_helpers import photo_inputs

    src = tmp_path / "out" / "ssd-mobilenet-v1" / "tflite"
    shutil.copytree(bundle("ssd-mobilenet-v1", "tflite"), src)
    assert main(["quantize", str(src), "--calibration", str(photo_folder()), "--frames", "4",
                 "--scheme", "tflite-int8"]) == 0
    int8 = src.parent / "tflite-int8" / "model.tflite"
    (float_op,), (int8_op,) = ssd_surgery.read_postprocess_ops(src / "model.tflite"), \
        ssd_surgery.read_postprocess_ops(int8)
    assert int8_op["attributes"] == float_op["attributes"]  # same NMS options, same max_detections
    interp = tflite_model.load_interpreter(int8, num_threads=1)
    details = interp.get_tensor_details()
    assert sum(d["dtype"] == np.int8 for d in details) > 20
    # the post-processing reads float (dequantized) heads and still detects on a photograph
    by_name = {d["name"]: d for d in details}
    assert all(by_name[name]["dtype"] == np.float32 for name in int8_op["inputs"][:2])
    x = photo_inputs(src)[0]
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    count = interp.get_tensor(by_name[int8_op["outputs"][3]]["index"])
    assert int(np.asarray(count).reshape(-1)[0]) > 0
    options = yaml.safe_load((src.parent / "tflite-int8" / "runtime_options.yaml").read_text())
    float_options = yaml.safe_load((src / "runtime_options.yaml").read_text())
    assert options["advanced_options:quantization_scale_type"] == 3
    assert options["object_detection:meta_arch_type"] == float_options["object_detection:meta_arch_type"]
