from edgezoo.export.report import fmt_cut, parity_figures
from edgezoo.verify.report import ParityReport


def test_detection_figures_are_compact():
    r = ParityReport("a.pb", "b.tflite", "detection")
    r.add("original_detections", 153, 1, "min")
    r.add("matched_fraction_of_original", 152 / 153, 0.95, "min")
    r.add("matched_fraction_of_converted", 1.0, 0.95, "min")
    r.add("max_box_error", 6.7e-5, 0.01)
    r.add("max_score_error", 1.4e-4, 0.01)
    assert parity_figures(r) == "153 dets, matched 99.3%/100.0%, box 6.70e-05, score 1.40e-04"


def test_classification_figures():
    r = ParityReport("a.pb", "b.tflite", "classification")
    r.add("logits: max_abs_error", 1.3e-4, 1e-3)
    r.add("logits: cosine", 0.9999912, 0.9999, "min")
    r.add("top1_agreement", 1.0, 1.0, "min")
    r.add("top5_overlap", 1.0, 0.99, "min")
    assert parity_figures(r) == "max|err| 1.30e-04, cos 0.999991, top1 100%, top5 100%"


def test_cut_stays_short():
    names = ["BoxPredictor_0a/BoxEncodingPredictor/caffe_order"] + [f"h{i}" for i in range(13)]
    text = fmt_cut(names, "TIDL ONNX SSD: heads described by meta_arch.prototxt")
    assert text.startswith("BoxPredictor_0a/BoxEncodingPr... +13 more (TIDL ONNX SSD")
    assert len(text) < 70
    assert fmt_cut(["resnet_model/dense/BiasAdd"], "card") == "resnet_model/dense/BiasAdd (card)"


def test_shortest_float32_keeps_the_float32_value():
    import numpy as np

    from edgezoo.core.report import shortest_float32

    for value in (0.30000001192092896, 0.6000000238418579, 1e-8, 0.95, 123.456):
        short = shortest_float32(value)
        assert np.float32(short) == np.float32(value)
        assert len(repr(short)) <= 8
    assert shortest_float32(0.30000001192092896) == 0.3
