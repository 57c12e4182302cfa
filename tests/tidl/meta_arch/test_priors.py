import math

import numpy as np
import pytest

from edgezoo.core.errors import ConfigError
from edgezoo.tidl.meta_arch.priors import (DefaultBoxSpec, caffe_aspect_ratios, compare_priors, mlperf_default_boxes,
                                      prior_box_params, priors_per_location, tidl_priors)
from edgezoo.tidl.meta_arch.prototxt import PriorBoxParam
from edgezoo.zoo import get_card


@pytest.fixture(scope="module")
def spec() -> DefaultBoxSpec:
    return DefaultBoxSpec.from_params(get_card("ssd-resnet34-1200").recipe("onnx").params)


def test_card_spec_gives_the_published_structure(spec):
    assert spec.feature_sizes() == [(50, 50), (25, 25), (13, 13), (7, 7), (3, 3), (3, 3)]
    assert spec.boxes_per_location() == [4, 6, 6, 6, 4, 4]
    assert spec.num_priors() == 15130
    boxes = mlperf_default_boxes(spec)
    assert boxes.shape == (15130, 4)
    # first box: centre of cell (0, 0) of layer 0, size 84/1200
    np.testing.assert_allclose(boxes[0], [0.01, 0.01, 0.07, 0.07])
    # second box size of layer 0 is sqrt(84 * 180) / 1200, in the block after the 2500 first ones
    np.testing.assert_allclose(boxes[2500, 2:], [math.sqrt(84 * 180) / 1200] * 2)
    assert boxes.max() <= 1.0 and mlperf_default_boxes(spec, clamp=False).max() > 1.2


def test_caffe_aspect_list_and_prior_order():
    p = PriorBoxParam(min_size=(100.0,), max_size=(200.5,), aspect_ratio=(2.0, 2.0, 1.0, 3.0), step=10.0)
    assert caffe_aspect_ratios(p) == [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0]
    assert priors_per_location(p) == 6
    pri = tidl_priors(p, (2, 3), (20, 30))
    assert pri.shape == (2, 3, 6, 4)
    np.testing.assert_allclose(pri[1, 2, 0], [2.5 * 10 / 30, 1.5 * 10 / 20, 100 / 30, 100 / 20])
    # max_size is cast to int (200.5 -> 200) before sqrt(min * max)
    np.testing.assert_allclose(pri[0, 0, 1, 2], math.sqrt(100 * 200) / 30)
    np.testing.assert_allclose(pri[0, 0, 2, 2:], [100 * math.sqrt(2) / 30, 100 / math.sqrt(2) / 20])
    np.testing.assert_allclose(pri[0, 0, 3, 2:], [100 / math.sqrt(2) / 30, 100 * math.sqrt(2) / 20])
    no_flip = PriorBoxParam(min_size=(100.0,), aspect_ratio=(2.0,), flip=False, step=10.0)
    assert priors_per_location(no_flip) == 2


def test_derived_params_match_mlperf_except_the_clamped_boxes(spec):
    params = prior_box_params(spec)
    assert [p.step for p in params] == [24.0, 48.0, 92.3076, 171.4285, 400.0, 400.0]
    assert params[1].aspect_ratio == (2.0, 3.0) and params[5].max_size == (1260.0,)
    cmp = compare_priors(spec, params)
    assert cmp.num_priors == 15130
    assert cmp.max_abs_diff_unclamped < 2e-6  # centres and sizes reproduced
    # what Caffe cannot express: the last head's 2:1 boxes, 1044*sqrt(2)/1200 = 1.2304 wide, clamped to 1.0
    assert cmp.max_abs_diff == pytest.approx(1044 * math.sqrt(2) / 1200 - 1.0)
    assert cmp.where.startswith("head 5, anchor 2") and cmp.differing_priors == 18
    assert "clamps 18 default boxes" in cmp.causes[0]


def test_nominal_steps_move_the_centres(spec):
    nominal = [PriorBoxParam(min_size=(spec.scales[k],), max_size=(spec.scales[k + 1],),
                             aspect_ratio=spec.aspect_ratios[k], variance=spec.variances, step=spec.steps[k])
               for k in range(6)]
    cmp = compare_priors(spec, nominal)
    # 12.5 / 13 vs 12.5 * 92 / 1200 on the 13x13 head
    assert cmp.max_abs_diff_unclamped == pytest.approx(12.5 / 13 - 12.5 * 92 / 1200)
    assert any("besides clamping" in c for c in cmp.causes)


def test_bad_spec_names_the_field():
    with pytest.raises(ConfigError, match="scales: expected 3 values"):
        DefaultBoxSpec.from_params({"input_size": [300, 300], "steps": [8, 16], "scales": [1, 2],
                                    "aspect_ratios": [[2], [2]]})
    with pytest.raises(ConfigError, match="missing 'steps'"):
        DefaultBoxSpec.from_params({"input_size": 300})
