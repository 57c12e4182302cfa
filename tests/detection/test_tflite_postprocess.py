"""The numpy reference of TFLite_Detection_PostProcess against the LiteRT kernel, on random and adversarial inputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgezoo.core.errors import ConfigError
from edgezoo.detection.tflite_postprocess import PostProcessParams, decode_boxes, detection_postprocess
from edgezoo.ssd import ssd_surgery

N, C = 64, 6  # anchors, foreground classes


class Kernel:
    """A .tflite holding only the op, run with LiteRT."""

    def __init__(self, params: PostProcessParams, tmp_path, columns: int = C + 1, n: int = N) -> None:
        from ai_edge_litert.interpreter import Interpreter

        path = ssd_surgery.standalone_postprocess_tflite(params, n, columns, tmp_path / "pp.tflite", tmp_path)
        self.interp = Interpreter(model_path=str(path))
        self.interp.allocate_tensors()
        self.inputs = {d["name"]: d["index"] for d in self.interp.get_input_details()}
        self.outputs = {d["name"]: d["index"] for d in self.interp.get_output_details()}

    def __call__(self, enc, scores, anchors):
        self.interp.set_tensor(self.inputs[ssd_surgery.BOX_OUTPUT], enc[None].astype(np.float32))
        self.interp.set_tensor(self.inputs[ssd_surgery.CLASS_OUTPUT], scores[None].astype(np.float32))
        self.interp.set_tensor(self.inputs[ssd_surgery.ANCHORS_NAME], anchors.astype(np.float32))
        self.interp.invoke()
        out = [self.interp.get_tensor(self.outputs[n]) for n in ssd_surgery.POSTPROCESS_OUTPUTS]
        return out[0][0], out[1][0], out[2][0], int(out[3][0])


def _params(**kw) -> PostProcessParams:
    base = dict(max_detections=20, nms_score_threshold=0.3, nms_iou_threshold=0.5, num_classes=C,
                detections_per_class=5, use_regular_nms=True)
    base.update(kw)
    return PostProcessParams(**base)


def _random_inputs(seed: int, n: int = N, columns: int = C + 1):
    rng = np.random.default_rng(seed)
    yx = rng.uniform(0.05, 0.95, (n, 2))
    hw = rng.uniform(0.1, 0.5, (n, 2))
    anchors = np.concatenate([yx, hw], 1).astype(np.float32)
    enc = rng.normal(0, 1.0, (n, 4)).astype(np.float32)
    scores = rng.uniform(0, 1, (n, columns)).astype(np.float32) ** 3
    return enc, scores, anchors


def _assert_same(ref, kernel, compare_as_set: bool = False):
    boxes, classes, scores, num = kernel
    assert ref.num_detections == num
    valid = ref.valid
    got = np.concatenate([boxes[:valid], classes[:valid, None], scores[:valid, None]], 1)
    want = np.concatenate([ref.boxes[:valid], ref.classes[:valid, None], ref.scores[:valid, None]], 1)
    if compare_as_set:
        got, want = got[np.lexsort(got.T[::-1])], want[np.lexsort(want.T[::-1])]
    np.testing.assert_array_equal(got, want)
    return valid


@pytest.mark.parametrize("regular", [True, False], ids=["regular", "fast"])
def test_random_inputs_match_the_kernel_bit_for_bit(tmp_path, regular):
    params = _params(use_regular_nms=regular)
    kernel = Kernel(params, tmp_path)
    total = 0
    for seed in range(6):
        enc, scores, anchors = _random_inputs(seed)
        total += _assert_same(detection_postprocess(enc, scores, anchors, params), kernel(enc, scores, anchors))
    assert total > 30  # the inputs really produce detections


def test_regular_nms_fills_unused_slots_with_zeros_and_caps_per_class(tmp_path):
    params = _params(max_detections=200, detections_per_class=3)  # more slots than candidates
    kernel = Kernel(params, tmp_path)
    enc, scores, anchors = _random_inputs(7)
    ref = detection_postprocess(enc, scores, anchors, params)
    got = kernel(enc, scores, anchors)
    _assert_same(ref, got)
    assert 0 < ref.num_detections <= 3 * C
    assert np.bincount(ref.classes[:ref.num_detections].astype(int)).max() <= 3
    assert not got[0][ref.num_detections:].any() and not got[2][ref.num_detections:].any()


@pytest.mark.parametrize("regular", [True, False], ids=["regular", "fast"])
def test_nothing_above_threshold_gives_zero_detections(tmp_path, regular):
    params = _params(use_regular_nms=regular, nms_score_threshold=0.9)
    kernel = Kernel(params, tmp_path)
    enc, scores, anchors = _random_inputs(3)
    scores = np.minimum(scores, np.float32(0.89))
    assert detection_postprocess(enc, scores, anchors, params).num_detections == 0
    assert kernel(enc, scores, anchors)[3] == 0


@pytest.mark.parametrize("regular", [True, False], ids=["regular", "fast"])
def test_ties_threshold_equality_and_iou_at_the_threshold(tmp_path, regular):
    """Equal scores resolve by anchor index; score == threshold passes (>=); IoU == threshold is kept (>)."""
    params = _params(use_regular_nms=regular, nms_score_threshold=0.5, nms_iou_threshold=0.5)
    kernel = Kernel(params, tmp_path)
    anchors = np.tile(np.array([[0.5, 0.5, 1.0, 1.0]], np.float32), (N, 1))
    anchors[1] = [0.5, 0.25, 1.0, 0.5]  # IoU with anchor 0 exactly 0.5: kept
    anchors[2] = [0.5, 0.5, 1.0, 1.0]  # identical to anchor 0: suppressed
    enc = np.zeros((N, 4), np.float32)  # decoded box == anchor exactly
    scores = np.zeros((N, C + 1), np.float32)
    scores[[0, 1, 2], 3] = 0.5  # three-way tie exactly at the threshold
    scores[5, 3] = np.nextafter(np.float32(0.5), np.float32(0))  # just below: dropped
    anchors[5] = [0.1, 0.1, 0.05, 0.05]
    ref = detection_postprocess(enc, scores, anchors, params)
    _assert_same(ref, kernel(enc, scores, anchors))
    assert ref.num_detections == 2
    np.testing.assert_array_equal(ref.boxes[:2], [[0, 0, 1, 1], [0, 0, 1, 0.5]])


def test_ties_across_classes_in_regular_nms_match_as_a_set(tmp_path):
    params = _params(max_detections=50)
    kernel = Kernel(params, tmp_path)
    enc, scores, anchors = _random_inputs(11)
    scores = np.round(scores * 4) / 4  # many exact ties across anchors and classes
    _assert_same(detection_postprocess(enc, scores, anchors, params), kernel(enc, scores, anchors),
                 compare_as_set=True)


@pytest.mark.parametrize("regular", [True, False], ids=["regular", "fast"])
def test_boxes_outside_the_image_are_not_clipped(tmp_path, regular):
    params = _params(use_regular_nms=regular, nms_score_threshold=0.1)
    kernel = Kernel(params, tmp_path)
    enc, scores, anchors = _random_inputs(5)
    anchors[:, :2] = np.where(np.arange(N)[:, None] % 2, -0.1, 1.1)  # centres outside [0, 1]
    enc[:, 2:] = 4.0  # exp(4/5) ~ 2.2x the anchor size
    ref = detection_postprocess(enc, scores, anchors, params)
    _assert_same(ref, kernel(enc, scores, anchors))
    valid = ref.boxes[:ref.num_detections]
    assert (valid < 0).any() and (valid > 1).any()


def test_fast_nms_with_two_classes_per_detection(tmp_path):
    params = _params(use_regular_nms=False, max_classes_per_detection=2, max_detections=10)
    kernel = Kernel(params, tmp_path)
    enc, scores, anchors = _random_inputs(9)
    ref = detection_postprocess(enc, scores, anchors, params)
    assert ref.slots_per_detection == 2 and ref.valid == 2 * ref.num_detections > 0
    _assert_same(ref, kernel(enc, scores, anchors))


def test_without_a_background_column(tmp_path):
    params = _params()
    kernel = Kernel(params, tmp_path, columns=C)
    enc, scores, anchors = _random_inputs(4, columns=C)
    assert _assert_same(detection_postprocess(enc, scores, anchors, params), kernel(enc, scores, anchors)) > 0


def test_decoding_follows_the_box_coder_formula():
    params = _params(y_scale=10, x_scale=10, h_scale=5, w_scale=5)
    anchors = np.array([[0.5, 0.4, 0.2, 0.1]], np.float32)
    enc = np.array([[1.0, -2.0, 5.0, 0.0]], np.float32)
    yc, xc = 0.5 + 0.1 * 0.2, 0.4 - 0.2 * 0.1
    h, w = np.exp(1.0) * 0.2, 0.1
    np.testing.assert_allclose(decode_boxes(enc, anchors, params)[0],
                               [yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], rtol=1e-6)


@pytest.mark.parametrize("field,value", [("max_detections", 0), ("nms_iou_threshold", 0.0), ("y_scale", 0.0),
                                         ("detections_per_class", 0), ("nms_score_threshold", 1.5)])
def test_invalid_parameters_are_config_errors(field, value):
    with pytest.raises(ConfigError, match=field):
        _params(**{field: value}).validate()
