from __future__ import annotations

import math

import numpy as np
import pytest

from edgezoo.verify.tensors import align, compare, looks_like_probabilities, softmax


def test_statistics_are_exact_on_known_arrays():
    a = np.array([[1.0, -2.0, 4.0, 0.5]], np.float32)
    b = np.array([[1.0, -2.5, 4.0, 0.5]], np.float32)
    s = compare(a, b, "a", "b")
    assert s.max_abs_error == pytest.approx(0.5)
    assert s.max_rel_error == pytest.approx(0.25)
    assert s.mean_abs_error == pytest.approx(0.125)
    dot = 1 + 5 + 16 + 0.25
    assert s.cosine == pytest.approx(dot / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert s.sqnr_db == pytest.approx(10 * math.log10((1 + 4 + 16 + 0.25) / 0.25))
    assert s.required["max_abs_error"] == pytest.approx(0.5) and s.original_range == (-2.0, 4.0)


def test_identical_and_non_finite():
    a = np.ones((2, 3), np.float32)
    same = compare(a, a.copy())
    assert same.max_abs_error == 0 and same.cosine == 1 and same.sqnr_db == math.inf
    bad = compare(a, np.full((2, 3), np.nan, np.float32))
    assert math.isnan(bad.max_abs_error) and "non-finite" in bad.note


def test_align_layouts_and_unit_dims():
    nhwc = np.arange(2 * 4 * 5 * 3, dtype=np.float32).reshape(2, 4, 5, 3)
    got, note = align(nhwc, nhwc.transpose(0, 3, 1, 2))
    assert np.array_equal(got, nhwc) and "NCHW" in note
    got, note = align(np.zeros((1, 1001)), np.zeros((1, 1, 1, 1001)))
    assert got.shape == (1, 1001) and "reshaped" in note
    with pytest.raises(ValueError, match="cannot be aligned"):
        align(np.zeros((1, 1001)), np.zeros((1, 1000)))


def test_probabilities_vs_logits():
    logits = np.random.default_rng(0).normal(0, 3, (4, 10))
    assert looks_like_probabilities(softmax(logits)) and not looks_like_probabilities(logits)
