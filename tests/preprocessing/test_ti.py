"""TI's preprocessing arithmetic, checked against an independent reading of TI's documented steps (integer crop
origins, the uint8 resize's rounding, PIL's resampling codes) and against MLPerf's where the two must differ."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from edgezoo import zoo
from edgezoo.bundle.config import card_config
from edgezoo.core.errors import ConfigError
from edgezoo.preprocessing.mlperf import coco_resize, mlperf_preprocess
from edgezoo.preprocessing.steps import Arithmetic, center_crop, crop_origin
from edgezoo.preprocessing.ti import TiPreprocess, ti_resize_size
from edgezoo.zoo.schema import Target
from tests.datasets.dataset_files import photo_bgr


def _config(model: str, target: Target = Target.TFLITE, **pre) -> dict:
    config = card_config(zoo.get_card(model), target)
    config["preprocess"].update(pre)
    return config


@pytest.mark.parametrize("size", range(224, 260))
def test_crop_origin_is_tis_rounded_half_and_one_past_mlperfs_when_odd(size):
    top, left = crop_origin(size, size + 7, 224, 224, Arithmetic.TI)
    assert (top, left) == ((size - 224 + 1) // 2, (size + 7 - 224 + 1) // 2)
    mlperf_top, _ = crop_origin(size, size + 7, 224, 224, Arithmetic.MLPERF)
    assert mlperf_top == (size - 224) // 2 and top - mlperf_top == (size - 224) % 2


def test_short_side_resize_size_truncates_the_long_side():
    assert ti_resize_size(375, 500, 256) == (256, 500 * 256 // 375)
    assert ti_resize_size(500, 375, 256) == (500 * 256 // 375, 256)
    assert ti_resize_size(300, 300, 256) == (256, 256)
    assert ti_resize_size(480, 640, (300, 200)) == (300, 200)


@pytest.mark.parametrize("photo", ["chelsea", "rocket", "coffee"])
def test_classification_input_is_tis_steps(photo):
    """cv2 backend: BGR->RGB, short side 256 on uint8, TI's crop, (x - mean) * scale in float32."""
    image = photo_bgr(photo)
    spec = TiPreprocess.from_config(_config("mobilenet-v1"))
    rgb = image[..., ::-1]
    h, w = rgb.shape[:2]
    new_h, new_w = (256, w * 256 // h) if h <= w else (h * 256 // w, 256)
    resized = cv2.resize(np.ascontiguousarray(rgb), (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, left = (new_h - 224 + 1) // 2, (new_w - 224 + 1) // 2
    crop = resized[top:top + 224, left:left + 224]
    expected = (crop.astype(np.float32)[None] - np.float32(127.5)) * np.float32(0.00784313725)
    out = spec.apply(image)
    assert out.dtype == np.float32 and out.shape == (224, 224, 3)
    np.testing.assert_array_equal(out, expected[0])


def test_crop_is_mlperfs_shifted_by_one_pixel_where_the_margin_is_odd():
    image = photo_bgr("chelsea")  # 300 x 451: short side 256 -> 256 x 384, margins 32 and 160: even
    image = np.ascontiguousarray(image[:, :449])  # 300 x 449 -> 256 x 383: horizontal margin 159, odd
    ti = TiPreprocess.from_config(_config("mobilenet-v1")).pixels(image)
    resized = cv2.resize(np.ascontiguousarray(image[..., ::-1]), (383, 256), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(ti, resized[16:240, 80:304])
    np.testing.assert_array_equal(center_crop(resized, 224, 224, Arithmetic.MLPERF), resized[16:240, 79:303])
    mlperf = mlperf_preprocess(image, "mobilenet-v1")
    assert not np.array_equal(TiPreprocess.from_config(_config("mobilenet-v1")).apply(image), mlperf)


def test_detection_resize_rounds_on_uint8_where_mlperf_truncates_a_float_resize():
    image = photo_bgr("coffee")
    ti = TiPreprocess.from_config(_config("ssd-mobilenet-v1")).pixels(image).astype(np.float64)
    float_resized = coco_resize(image, 300, 300)  # MLPerf: float32 resize
    truncated = float_resized.astype(np.uint8)  # MLPerf's cast
    rounded = np.rint(float_resized)
    # OpenCV's uint8 resize is fixed point: within one level of the rounded float resize, centred on it
    assert np.abs(ti - rounded).max() <= 1 and abs(float((ti - rounded).mean())) < 0.05
    # ... so above MLPerf's truncation by what rounding adds (a third of a level on this photo)
    gain = float((rounded - truncated).mean())
    assert gain > 0.3 and abs(float((ti - truncated).mean()) - gain) < 0.05


def test_tis_input_for_resnet34_is_the_uint8_resize_normalised():
    image = photo_bgr("astronaut")
    config = _config("ssd-resnet34-1200", Target.ONNX)
    out = TiPreprocess.from_config(config).apply(image)
    pixels = cv2.resize(np.ascontiguousarray(image[..., ::-1]), (1200, 1200), interpolation=cv2.INTER_LINEAR)
    mean = np.asarray(config["session"]["input_mean"], np.float32)[:, None, None]
    scale = np.asarray(config["session"]["input_scale"], np.float32)[:, None, None]
    np.testing.assert_array_equal(out, (pixels.transpose(2, 0, 1) - mean) * scale)
    assert out.shape == (3, 1200, 1200)


@pytest.mark.parametrize("code, flag", [(None, cv2.INTER_LINEAR), (0, cv2.INTER_LINEAR), (3, cv2.INTER_AREA),
                                        (2, cv2.INTER_CUBIC)])
def test_cv2_interpolation_codes_null_and_zero_mean_linear(code, flag):
    image = photo_bgr("rocket")
    pixels = TiPreprocess.from_config(_config("resnet50-v1.5", interpolation=code)).pixels(image)
    h, w = image.shape[:2]
    size = (256, w * 256 // h) if h <= w else (h * 256 // w, 256)
    resized = cv2.resize(np.ascontiguousarray(image[..., ::-1]), size[::-1], interpolation=flag)
    top, left = (size[0] - 223) // 2, (size[1] - 223) // 2
    np.testing.assert_array_equal(pixels, resized[top:top + 224, left:left + 224])


@pytest.mark.parametrize("code, resample", [(None, Image.BILINEAR), (3, Image.BICUBIC), (0, Image.BILINEAR)])
def test_pil_backend_resamples_with_pils_codes(code, resample):
    """TI's own model-zoo configs use backend pil (3 = BICUBIC there, where 3 = INTER_AREA for cv2)."""
    image = photo_bgr("chelsea")
    pixels = TiPreprocess.from_config(_config("resnet50-v1.5", backend="pil", interpolation=code)).pixels(image)
    pil = Image.fromarray(np.ascontiguousarray(image[..., ::-1]))
    w, h = pil.size
    size = (w * 256 // h, 256) if h <= w else (256, h * 256 // w)
    resized = pil.resize(size, resample=resample)
    top, left = (size[1] - 223) // 2, (size[0] - 223) // 2
    np.testing.assert_array_equal(pixels, np.asarray(resized.crop((left, top, left + 224, top + 224))))


def test_reverse_channels_layout_and_no_normaliser():
    config = _config("resnet50-v1.5", Target.ONNX, reverse_channels=True)
    image = photo_bgr("coffee")
    spec = TiPreprocess.from_config(config)
    pixels = spec.pixels(image)
    mean = np.asarray(config["session"]["input_mean"], np.float32)
    np.testing.assert_array_equal(spec.apply(image), (pixels[..., ::-1].astype(np.float32) - mean).transpose(2, 0, 1))
    config["session"].pop("input_scale")
    unnormalised = TiPreprocess.from_config(config)
    assert unnormalised.dtype == "uint8" and unnormalised.apply(image).dtype == np.uint8


@pytest.mark.parametrize("change, match", [
    ({"backend": "skimage"}, r"preprocess.backend must be one of"),
    ({"interpolation": 7}, r"preprocess.interpolation must be null or a cv2 interpolation code"),
    ({"resize_with_pad": True}, r"resize_with_pad is not reproduced"),
    ({"crop": [0, 4]}, r"preprocess.crop: must be a positive size"),
    ({"data_layout": "HWC"}, r"preprocess.data_layout must be NHWC or NCHW"),
])
def test_what_tis_semantics_cannot_reproduce_is_refused_by_key(change, match):
    with pytest.raises(ConfigError, match=match):
        TiPreprocess.from_config(_config("resnet50-v1.5", **change), "b/config.yaml")
