"""SSD bundles: what TIDL's meta-architecture decodes stays float; the TFLite post-processing bundle is refused by
tflite-int8 with the reason (one line, exit 2, nothing written)."""

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


def test_tflite_int8_refuses_the_postprocess_bundle(tmp_path, capsys):
    src = tmp_path / "out" / "ssd-mobilenet-v1" / "tflite"
    shutil.copytree(bundle("ssd-mobilenet-v1", "tflite"), src)
    capsys.readouterr()
    code = main(["quantize", str(src), "--calibration", str(photo_folder()), "--frames", "4",
                 "--scheme", "tflite-int8"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "TFLite_Detection_PostProcess" in err
    assert sorted(p.name for p in src.parent.iterdir()) == ["tflite"]
