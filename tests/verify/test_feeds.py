from __future__ import annotations

import numpy as np
import pytest

from edgezoo.core.errors import EdgezooError
from edgezoo.datasets.images import random_images
from edgezoo.graphs import TensorInfo
from edgezoo.verify.feeds import build_feeds, image_layout, pair_inputs


def test_layouts():
    assert image_layout(TensorInfo("x", (None, 224, 224, 3), "float32")) == "NHWC"
    assert image_layout(TensorInfo("x:0", ("unk", 3, 224, 224), "float32")) == "NCHW"
    assert image_layout(TensorInfo("t", (1, 7), "float32")) is None


def test_same_pixels_in_each_models_layout_and_dtype():
    orig = [TensorInfo("image", (None, 32, 48, 3), "float32")]
    conv = [TensorInfo("image:0", (1, 3, 32, 48), "float32")]
    feeds = build_feeds(orig, conv, random_images(2, seed=1), None)
    a, b = feeds.original[0]["image"], feeds.converted[0]["image:0"]
    assert a.shape == (1, 32, 48, 3) and b.shape == (1, 3, 32, 48)
    np.testing.assert_array_equal(a, b.transpose(0, 2, 3, 1))
    assert -1.0 <= a.min() and a.max() <= 1.0 and feeds.preprocess["source"] == "default (no card)"
    u8 = build_feeds([TensorInfo("image_tensor", (1, 32, 32, 3), "uint8")], orig[:1], random_images(1), None)
    assert u8.original[0]["image_tensor"].dtype == np.uint8


def test_non_image_inputs_get_identical_seeded_noise():
    info = [TensorInfo("features", (1, 16), "float32")]
    feeds = build_feeds(info, info, random_images(4), None, seed=3)
    assert len(feeds.names) == 2 and feeds.names[0].startswith("noise-3")
    np.testing.assert_array_equal(feeds.original[1]["features"], feeds.converted[1]["features"])


def test_multi_input_models_pair_by_name():
    a = [TensorInfo("x:0", (1, 4), "float32"), TensorInfo("y:0", (1, 4), "float32")]
    b = [TensorInfo("y", (1, 4), "float32"), TensorInfo("x", (1, 4), "float32")]
    assert [(p[0].name, p[1].name) for p in pair_inputs(a, b)] == [("x:0", "x"), ("y:0", "y")]
    with pytest.raises(EdgezooError, match="no counterpart"):
        pair_inputs(a, [TensorInfo("z", (1, 4), "float32"), TensorInfo("x", (1, 4), "float32")])
