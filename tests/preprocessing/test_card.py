import numpy as np
import pytest

from edgezoo import zoo
from edgezoo.datasets import images
from edgezoo.preprocessing.card import normalize, preprocess, resize_image


def _gradient(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)


def test_short_side_resize_then_centre_crop():
    spec = zoo.get_card("resnet50").preprocess
    out = resize_image(_gradient(300, 600), spec)  # short side 300 -> 256, long side 600 -> 512
    assert out.shape == (224, 224, 3)
    # Centre crop of the 256x512 image: columns 144..367 of the resized picture.
    assert out[0, 0, 0] == pytest.approx(144 * 600 / 512, abs=2)


def test_resnet50_subtracts_the_mlperf_means_without_scaling():
    spec = zoo.get_card("resnet50").preprocess
    flat = np.full((256, 256, 3), 100, np.uint8)
    x = preprocess(flat, spec)
    assert x.shape == (1, 224, 224, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0, 0], [100 - 123.68, 100 - 116.78, 100 - 103.94], rtol=1e-6)


def test_mobilenet_maps_pixels_to_minus_one_one():
    spec = zoo.get_card("mobilenet").preprocess
    x = normalize(np.array([[[0.0, 127.5, 255.0]]], np.float32), spec)
    np.testing.assert_allclose(x[0, 0], [-1.0, 0.0, 1.0], atol=1e-6)


def test_ssd_mobilenet_uint8_input_and_truncating_float_path():
    spec = zoo.get_card("ssd-mobilenet").preprocess
    img = _gradient(480, 640)
    u8 = preprocess(img, spec)
    assert u8.shape == (1, 300, 300, 3) and u8.dtype == np.uint8
    f32 = preprocess(img, spec, dtype="float32")
    # The float path sees exactly the truncated uint8 pixels, normalised by 2/255 x - 1.
    np.testing.assert_allclose(f32, u8.astype(np.float32) * (2 / 255) - 1, atol=1e-5)


def test_ssd_resnet34_is_nchw_imagenet_normalised():
    spec = zoo.get_card("ssd-resnet34").preprocess
    x = preprocess(np.full((100, 80, 3), 255, np.uint8), spec)
    assert x.shape == (1, 3, 1200, 1200)
    np.testing.assert_allclose(x[0, :, 0, 0], [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225],
                               rtol=1e-4)


def test_verification_images_are_real_photographs_plus_seeded_random():
    ims = images.verification_images(count_random=2, seed=3)
    names = [n for n, _ in ims]
    assert names[:4] == list(images.PHOTOGRAPHS) and names[4:] == ["random-3-0", "random-3-1"]
    assert all(i.dtype == np.uint8 and i.ndim == 3 and i.shape[2] == 3 for _, i in ims)
    again = images.random_images(2, seed=3)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ims[4:], again))
    assert not np.array_equal(ims[4][1], images.random_images(1, seed=4)[0][1])
    # Image-like, not white noise: neighbouring pixels correlate strongly.
    img = ims[4][1].astype(np.float64)
    corr = np.corrcoef(img[:, :-1, 0].ravel(), img[:, 1:, 0].ravel())[0, 1]
    assert corr > 0.7
