"""Fitting Caffe prior_box_param to a graph's priors, per head."""

import math

import numpy as np
import pytest

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import DataLayout
from edgezoo.standins.ssd_resnet34 import SPEC_PARAMS
from edgezoo.tidl.meta_arch.prior_fit import fit_head, fit_priors, join_heads, split_per_head
from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, mlperf_default_boxes

SPEC = DefaultBoxSpec.from_params(SPEC_PARAMS)
VAR = (0.1, 0.1, 0.2, 0.2)


def _fits(priors):
    return fit_priors(priors, SPEC.feature_sizes(), SPEC.boxes_per_location(), DataLayout.INTERLEAVED, (1200, 1200),
                      VAR)


def test_mlperf_priors_fit_the_card_spec():
    fits = _fits(mlperf_default_boxes(SPEC))
    assert [f.param.min_size[0] for f in fits] == list(SPEC.scales[:-1])
    assert [f.param.max_size[0] for f in fits] == list(SPEC.scales[1:])
    assert [f.param.aspect_ratio for f in fits] == list(SPEC.aspect_ratios) and all(f.param.flip for f in fits)
    assert [f.param.effective_offset for f in fits] == [0.5] * 6
    assert not any(f.permuted for f in fits)
    assert max(f.deviation for f in fits[:5]) < 1e-5
    # the last head's 2:1 boxes are clamped from 1044 * sqrt(2) / 1200 to 1.0: the measured deviation is that
    assert fits[5].deviation == pytest.approx(1044 * math.sqrt(2) / 1200 - 1, abs=1e-6)
    assert fits[5].foldable and fits[5].centre_deviation < 1e-5
    np.testing.assert_allclose(fits[5].size_ratios[2], [1200 / (1044 * math.sqrt(2)), 1.0], rtol=1e-6)


def test_boxes_in_another_order_give_the_permutation():
    priors = split_per_head(mlperf_default_boxes(SPEC), SPEC.feature_sizes(), SPEC.boxes_per_location(),
                            DataLayout.INTERLEAVED)
    moved = [p[:, :, [0, *range(2, p.shape[2]), 1], :] for p in priors]  # interpolated box last
    fits = _fits(join_heads(moved, DataLayout.INTERLEAVED))
    assert fits[0].order == (0, 3, 1, 2) and fits[1].order == (0, 5, 1, 2, 3, 4)
    assert all(f.permuted for f in fits) and max(f.deviation for f in fits[:5]) < 1e-5


def _grid(sizes, grid=(4, 6), image=(320, 480), offset=0.5):
    fh, fw = grid
    cy, cx = np.meshgrid((np.arange(fh) + offset) / fh, (np.arange(fw) + offset) / fw, indexing="ij")
    out = np.zeros((fh, fw, len(sizes), 4))
    out[..., 0], out[..., 1] = cx[..., None], cy[..., None]
    out[..., 2] = np.array([w for w, _ in sizes]) / image[1]
    out[..., 3] = np.array([h for _, h in sizes]) / image[0]
    return out


def test_non_square_image_ratios_without_flip():
    # 32 px square, ratios 2 and 3 without their transposes -> flip false; steps differ per axis
    sizes = [(32, 32), (32 * math.sqrt(2), 32 / math.sqrt(2)), (32 * math.sqrt(3), 32 / math.sqrt(3))]
    fit = fit_head(0, _grid(sizes, grid=(4, 8)), (320, 480), VAR)
    assert fit.param.flip is False and fit.param.aspect_ratio == (2.0, 3.0) and fit.param.max_size == ()
    assert (fit.param.step_h, fit.param.step_w) == (320 / 4, 480 / 8)
    assert fit.deviation < 1e-6


def test_two_scales_in_one_head_is_a_clear_error():
    sizes = [(32, 32), (48, 48), (64, 64)]
    with pytest.raises(RecipeError, match="head 0: 3 square boxes per location"):
        fit_head(0, _grid(sizes), (320, 480), VAR)
