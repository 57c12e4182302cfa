"""A bundle's config.yaml preprocessing (as edgezoo.bundle.config writes it) reproduces MLPerf's per-model pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from edgezoo import zoo
from edgezoo.bundle.config import card_config
from edgezoo.core.errors import ConfigError
from edgezoo.preprocessing.bundle import BundlePreprocess
from edgezoo.preprocessing.mlperf import mlperf_preprocess
from edgezoo.zoo.schema import Target
from tests.datasets.dataset_files import photo_bgr

# model, target, input dtype the exported model takes, largest difference allowed against mlperf_preprocess:
# geometry is MLPerf's, only (x - mean) * scale vs MLPerf's own arithmetic order may round differently.
CASES = [("resnet50-v1.5", Target.TFLITE, "float32", 0.0), ("resnet50-v1.5", Target.ONNX, "float32", 0.0),
         ("mobilenet-v1", Target.TFLITE, "float32", 1e-6), ("ssd-mobilenet-v1", Target.TFLITE, "uint8", 0),
         ("ssd-resnet34-1200", Target.ONNX, "float32", 1e-5)]


@pytest.mark.parametrize("model, target, dtype, tolerance", CASES, ids=[f"{c[0]}-{c[1].value}" for c in CASES])
def test_card_config_gives_mlperf_inputs(model, target, dtype, tolerance):
    config = card_config(zoo.get_card(model), target)
    spec = BundlePreprocess.from_config(config)
    for photo in ("rocket", "chelsea"):
        image = photo_bgr(photo)
        expected = mlperf_preprocess(image, model, layout=spec.layout)
        out = spec.apply(image, dtype=dtype)
        assert out.shape == expected.shape and out.dtype == expected.dtype
        np.testing.assert_allclose(out.astype(np.float64), expected, rtol=0, atol=tolerance)


def test_float_ssd_mobilenet_input_is_the_normalised_uint8_pixels():
    """The exported TFLite takes (x - 127.5) / 127.5 where the original took uint8: the same truncated pixels."""
    spec = BundlePreprocess.from_config(card_config(zoo.get_card("ssd-mobilenet-v1"), Target.TFLITE))
    image = photo_bgr("coffee")
    pixels = mlperf_preprocess(image, "ssd-mobilenet-v1").astype(np.float64)
    np.testing.assert_allclose(spec.apply(image), (pixels - 127.5) / 127.5, atol=1e-6)


def test_reverse_channels_and_layout_are_honoured():
    config = card_config(zoo.get_card("resnet50-v1.5"), Target.TFLITE)
    config["preprocess"].update(reverse_channels=True, data_layout="NCHW")
    config["session"]["input_mean"] = [0, 0, 0]
    image = photo_bgr("astronaut")
    rgb = mlperf_preprocess(image, "resnet50-v1.5") + np.array([123.68, 116.78, 103.94], dtype=np.float32)
    np.testing.assert_allclose(BundlePreprocess.from_config(config).apply(image), rgb[..., ::-1].transpose(2, 0, 1),
                               atol=1e-4)


@pytest.mark.parametrize("change, match", [
    ({"resize_mode": "pad"}, r"preprocess.resize_mode must be one of"),
    ({"interpolation": "cubic"}, r"preprocess.interpolation must be null, 1 \(linear\) or 3 \(area\)"),
    ({"interpolation": 2}, r"preprocess.interpolation must be null, 1 \(linear\) or 3 \(area\)"),
    ({"resize_mode": "short_side", "resize": [256, 300]}, r"preprocess.resize must be one number"),
    ({"resize": -4}, r"preprocess.resize: must be a positive size"),
    ({"crop": "224"}, r"preprocess.crop: must be a positive size"),
    ({"data_layout": "CHW"}, r"preprocess.data_layout must be NHWC or NCHW"),
    ({"session": {"input_mean": [1, 2]}}, r"session.input_mean: must be a number or 3 numbers"),
])
def test_unusable_preprocess_values_name_the_key(change, match):
    config = card_config(zoo.get_card("resnet50-v1.5"), Target.TFLITE)
    change = dict(change)
    config["session"].update(change.pop("session", {}))
    config["preprocess"].update(change)
    with pytest.raises(ConfigError, match=match):
        BundlePreprocess.from_config(config, "b/config.yaml")


def test_bundles_written_before_ti_schema_still_read_the_same():
    """Older bundles: mean/scale in preprocess, interpolation by name, the id in model_info."""
    new = card_config(zoo.get_card("resnet50-v1.5"), Target.TFLITE)
    old = {"preprocess": {**new["preprocess"], "interpolation": "area", "resize_mode": "short_side",
                          "mean": new["session"]["input_mean"], "scale": new["session"]["input_scale"]},
           "model_info": {"model_id": "resnet50-v1.5"}}
    image = photo_bgr("rocket")
    assert BundlePreprocess.from_config(old) == BundlePreprocess.from_config(new)
    np.testing.assert_array_equal(BundlePreprocess.from_config(old).apply(image),
                                  BundlePreprocess.from_config(new).apply(image))
