"""mlperf_preprocess against MLPerf's python/dataset.py semantics, re-derived here step by step on real photographs.

The reference steps below are written from MLPerf's vision/classification_and_detection/python/dataset.py: sizes
worked out by hand for each photograph, channel order by numpy slicing, normalisation in float64.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgezoo.core.errors import DatasetError, UnknownModelError
from edgezoo.preprocessing.mlperf import mlperf_preprocess
from tests.datasets.dataset_files import photo_bgr

# (photo, its HxW, the size MLPerf resizes it to for 224 crops: short side 256, long side int(256 * long / short))
# chelsea 300x451: 256 x int(384.85) = 384 (round() would give 385); coffee 400x600: 256 x 384;
# astronaut 512x512: square -> the "else" branch, 256 x 256; rocket 427x640: 256 x int(383.70) = 383.
GEOMETRY = [("chelsea", (300, 451), (256, 384)), ("coffee", (400, 600), (256, 384)),
            ("astronaut", (512, 512), (256, 256)), ("rocket", (427, 640), (256, 383))]


def _reference_crop(resized: np.ndarray) -> np.ndarray:
    # centre crop 224: int((W - 224) / 2) .. int((W + 224) / 2), written out for the sizes above
    h, w = resized.shape[:2]
    top = {256: 16}[h]
    left = {384: 80, 256: 16, 383: 79}[w]  # (383 - 224) / 2 = 79.5 -> 79, (383 + 224) / 2 = 303.5 -> 303
    return resized[top:top + 224, left:left + 224]


@pytest.mark.parametrize("photo, shape, resized", GEOMETRY, ids=[g[0] for g in GEOMETRY])
def test_resnet50_is_pre_process_vgg(photo, shape, resized):
    bgr = photo_bgr(photo)
    assert bgr.shape[:2] == shape
    rgb = bgr[..., ::-1]
    small = cv2.resize(np.ascontiguousarray(rgb), resized[::-1], interpolation=cv2.INTER_AREA)  # uint8 resize
    expected = _reference_crop(small).astype(np.float64) - np.array([123.68, 116.78, 103.94])
    out = mlperf_preprocess(bgr, "resnet50-v1.5")
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # NCHW = the same values transposed (MLPerf's need_transpose for ONNX Runtime)
    np.testing.assert_array_equal(mlperf_preprocess(bgr, "resnet50", layout="NCHW"), out.transpose(2, 0, 1))


@pytest.mark.parametrize("photo, shape, resized", GEOMETRY, ids=[g[0] for g in GEOMETRY])
def test_mobilenet_is_pre_process_mobilenet(photo, shape, resized):
    bgr = photo_bgr(photo)
    small = cv2.resize(np.ascontiguousarray(bgr[..., ::-1]), resized[::-1], interpolation=cv2.INTER_LINEAR)
    expected = (_reference_crop(small).astype(np.float64) / 255 - 0.5) * 2
    out = mlperf_preprocess(bgr, "mobilenet-v1")
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_interpolation_and_rounding_matter_so_the_tests_above_can_fail():
    """The details the tests pin down change the numbers: INTER_AREA vs INTER_LINEAR, int() vs round()."""
    bgr = photo_bgr("chelsea")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    area = mlperf_preprocess(bgr, "resnet50-v1.5")
    linear = cv2.resize(rgb, (384, 256), interpolation=cv2.INTER_LINEAR)[16:240, 80:304] - np.float32(123.68)
    rounded = cv2.resize(rgb, (385, 256), interpolation=cv2.INTER_AREA)[16:240, 80:304] - np.float32(123.68)
    assert np.abs(area[..., 0] - linear[..., 0]).max() > 1
    assert np.abs(area[..., 0] - rounded[..., 0]).max() > 1


def test_ssd_mobilenet_resizes_floats_then_truncates_to_uint8():
    bgr = photo_bgr("coffee")
    resized = cv2.resize(bgr.astype(np.float32), (300, 300), interpolation=cv2.INTER_LINEAR)[..., ::-1]
    expected = np.floor(resized)  # float -> uint8 truncates (values are >= 0)
    out = mlperf_preprocess(bgr, "ssd-mobilenet-v1")
    assert out.shape == (300, 300, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    # resizing the uint8 image instead (what the classification pipelines do) gives other pixels
    assert (cv2.resize(bgr, (300, 300), interpolation=cv2.INTER_LINEAR)[..., ::-1] != out).any()


def test_ssd_resnet34_is_imagenet_normalised_nchw_1200():
    bgr = photo_bgr("astronaut")
    resized = cv2.resize(bgr.astype(np.float32), (1200, 1200), interpolation=cv2.INTER_LINEAR)[..., ::-1]
    expected = (resized / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    out = mlperf_preprocess(bgr, "ssd-resnet34-1200")
    assert out.shape == (3, 1200, 1200) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected.transpose(2, 0, 1), atol=1e-5)


def test_grayscale_detection_input_goes_through_gray2rgb():
    gray = cv2.cvtColor(photo_bgr("chelsea"), cv2.COLOR_BGR2GRAY)
    out = mlperf_preprocess(gray, "ssd-mobilenet-v1")
    expected = np.floor(cv2.resize(gray.astype(np.float32), (300, 300), interpolation=cv2.INTER_LINEAR))
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], expected)
    three = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)  # what cv2.imread gives for a grayscale JPEG
    np.testing.assert_array_equal(mlperf_preprocess(three, "ssd-mobilenet-v1"), out)


def test_bad_inputs():
    bgr = photo_bgr("chelsea")
    with pytest.raises(DatasetError, match="uint8"):
        mlperf_preprocess(bgr.astype(np.float32), "resnet50")
    with pytest.raises(DatasetError, match="shape"):
        mlperf_preprocess(bgr[..., :2], "resnet50")
    with pytest.raises(DatasetError, match="layout must be NHWC or NCHW"):
        mlperf_preprocess(bgr, "resnet50", layout="HWC")
    with pytest.raises(UnknownModelError):
        mlperf_preprocess(bgr, "resnet18")
