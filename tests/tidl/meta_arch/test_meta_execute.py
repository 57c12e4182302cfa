import math

import numpy as np
import pytest

from edgezoo.core.errors import ConfigError
from edgezoo.detection.codings import CodeType, DataLayout, ScoreConverter
from edgezoo.tidl.meta_arch.execute import MetaArchExecutor, decode_boxes, nms
from edgezoo.tidl.meta_arch.prototxt import CaffeSsd, DetectionOutputParam, NmsParam, PriorBoxParam

VAR = (0.1, 0.1, 0.2, 0.2)


def _ssd(layout=DataLayout.INTERLEAVED, code=CodeType.CENTER_SIZE, converter=ScoreConverter.SOFTMAX,
         confidence=0.05, top_k=200, keep_top_k=200, num_classes=3):
    prior = PriorBoxParam(min_size=(20.0,), max_size=(40.0,), aspect_ratio=(2.0,), variance=VAR, step=20.0)
    return CaffeSsd(box_input=("b",), class_input=("c",), output=("o",), in_width=40, in_height=40,
                    score_converter=converter, prior_box_param=(prior,),
                    detection_output_param=DetectionOutputParam(
                        num_classes=num_classes, background_label_id=0, code_type=code, keep_top_k=keep_top_k,
                        confidence_threshold=confidence, nms_param=NmsParam(nms_threshold=0.5, top_k=top_k)),
                    data_layout=layout)


def test_center_size_decode_with_variances():
    priors = np.array([[0.5, 0.5, 0.2, 0.4]])
    loc = np.array([[1.0, -2.0, math.log(2) / 0.2, 0.0]])
    box = decode_boxes(loc, priors, VAR, CodeType.CENTER_SIZE)[0]
    # cx = 0.5 + 0.1*1*0.2 = 0.52, cy = 0.5 - 0.1*2*0.4 = 0.42, w = 0.4, h = 0.4
    np.testing.assert_allclose(box, [0.32, 0.22, 0.72, 0.62])
    yxhw = decode_boxes(loc[:, [1, 0, 3, 2]], priors, VAR, CodeType.CENTER_SIZE_YXHW)[0]
    np.testing.assert_allclose(yxhw, box)
    np.testing.assert_allclose(decode_boxes(np.full((1, 4), 1.0), priors, VAR, CodeType.CORNER)[0],
                               [0.5, 0.4, 0.8, 0.9])


def test_layouts_read_the_same_heads_differently():
    """The same regressions laid out INTERLEAVED (coord * A + a) or SEPARATED (a * 4 + coord) decode equally."""
    rng = np.random.default_rng(0)
    a, h, w, classes = 4, 2, 2, 3
    loc = rng.normal(size=(h, w, a, 4))
    logits = rng.normal(size=(h, w, a, classes)) * 3
    inter_b = loc.transpose(3, 2, 0, 1).reshape(1, 4 * a, h, w)
    inter_c = logits.transpose(3, 2, 0, 1).reshape(1, classes * a, h, w)
    sep_b = loc.transpose(2, 3, 0, 1).reshape(1, a * 4, h, w)
    sep_c = logits.transpose(2, 3, 0, 1).reshape(1, a * classes, h, w)
    b1, s1 = MetaArchExecutor(_ssd(DataLayout.INTERLEAVED)).decode([inter_b], [inter_c])
    b2, s2 = MetaArchExecutor(_ssd(DataLayout.SEPARATED)).decode([sep_b], [sep_c])
    np.testing.assert_allclose(b1, b2)
    np.testing.assert_allclose(s1, s2)
    # and with zero regressions the boxes are the priors: cell (0, 1), anchor 1 = sqrt(20 * 40) px on 40 px
    zero, _ = MetaArchExecutor(_ssd()).decode([np.zeros_like(inter_b)], [inter_c])
    s = math.sqrt(800) / 40
    np.testing.assert_allclose(zero[(0 * w + 1) * a + 1], [0.75 - s / 2, 0.25 - s / 2, 0.75 + s / 2, 0.25 + s / 2])
    with pytest.raises(ConfigError, match=r"box_input\[0\] 'b': shape \[1, 12, 2, 2\], expected \[1, 4 x 4 = 16"):
        MetaArchExecutor(_ssd()).decode([inter_b[:, :12]], [inter_c])


def test_score_converters():
    logits = np.array([[0.0, 1.0, 2.0]])
    ex = MetaArchExecutor(_ssd(converter=ScoreConverter.SIGMOID))
    from edgezoo.tidl.meta_arch.execute import convert_scores
    np.testing.assert_allclose(convert_scores(logits, ScoreConverter.SIGMOID), 1 / (1 + np.exp(-logits)))
    soft = convert_scores(logits, ScoreConverter.SOFTMAX)
    np.testing.assert_allclose(soft.sum(), 1.0) and np.testing.assert_allclose(soft[0, 2] / soft[0, 1], math.e)
    assert ex.ssd.effective_score_converter is ScoreConverter.SIGMOID


def test_nms_thresholds_top_k_and_keep_top_k():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.5], [0, 0.6, 1, 1], [2, 2, 3, 3]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    # IoU(0,1) = 0.5 exactly: kept (suppression needs IoU > threshold); IoU(0,2) = 0.4
    assert nms(boxes, scores, 0.5, None).tolist() == [0, 1, 2, 3]
    assert nms(boxes, scores, 0.45, None).tolist() == [0, 2, 3]
    assert nms(boxes, np.array([0.6, 0.8, 0.7, 0.9]), 0.45, None).tolist() == [3, 1, 2]  # best first, 0 suppressed
    assert nms(boxes, scores, 0.5, 2).tolist() == [0, 1]  # top_k cuts candidates BEFORE NMS
    ex = MetaArchExecutor(_ssd(confidence=0.25, keep_top_k=2))
    probs = np.array([[0.1, 0.6, 0.3], [0.2, 0.25, 0.55], [0.5, 0.2, 0.3], [0.0, 0.0, 1.0]])
    det = ex.select(boxes, probs)
    # candidates > 0.25: class 1 {0}, class 2 {0, 1, 2, 3}; keep_top_k 2 of (1.0, 0.6, 0.55, 0.3, 0.3)
    assert det.scores.tolist() == [1.0, 0.6] and det.labels.tolist() == [2, 1]
    np.testing.assert_allclose(det.detections().boxes[0], [2, 2, 3, 3])


def _same(a, b):
    np.testing.assert_array_equal(a.boxes_xyxy, b.boxes_xyxy)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.scores, b.scores)


@pytest.mark.parametrize("top_k, keep_top_k, confidence, classes", [
    (None, 50, 0.01, 6), (30, 50, 0.01, 6), (None, -1, 0.2, 4), (8, 3, 0.0, 5), (None, 500, 1e-8, 8)])
def test_all_classes_at_once_is_the_per_class_loop_bit_for_bit(top_k, keep_top_k, confidence, classes):
    """The vectorised selection (all classes in output order, stopping at keep_top_k) against Caffe's loop,
    on crowded overlapping boxes with tied scores (rounded to 2 decimals) and several blocks of candidates."""
    from edgezoo.tidl.meta_arch import execute

    rng = np.random.default_rng(classes)
    n = 1500
    centres = rng.uniform(0, 1, (n, 2))
    sizes = rng.uniform(0.02, 0.3, (n, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    scores = np.round(rng.dirichlet(np.ones(classes) * 0.3, n), 2)
    ex = MetaArchExecutor(_ssd(confidence=confidence, top_k=top_k, keep_top_k=keep_top_k, num_classes=classes))
    block = execute.BLOCK
    try:
        execute.BLOCK = 257  # several blocks even on a small input
        fast = ex.select(boxes, scores)
    finally:
        execute.BLOCK = block
    slow = ex.select_per_class(boxes, scores)
    assert len(slow.scores) > 2 and (keep_top_k < 0 or len(slow.scores) <= keep_top_k)
    _same(fast, slow)
