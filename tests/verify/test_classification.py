from __future__ import annotations

import numpy as np
import pytest

from edgezoo.verify.classification import ScoreKind, assign_offsets, compare_topk, like_with_like, scores
from edgezoo.verify.tensors import softmax


def test_kinds_are_recognised():
    logits = np.random.default_rng(1).normal(0, 3, (3, 1001)).astype(np.float32)
    assert scores("l", logits).kind is ScoreKind.LOGITS
    assert scores("p", softmax(logits).astype(np.float32)).kind is ScoreKind.PROBABILITIES
    assert scores("a", logits.argmax(1)).kind is ScoreKind.ARGMAX
    assert scores("fm", np.zeros((1, 4, 8, 8), np.float32)) is None  # a feature map is not class scores
    assert scores("p", logits, role="probabilities").kind is ScoreKind.PROBABILITIES  # the card's role wins


def test_1001_probabilities_vs_1000_logits_compare_label_for_label():
    rng = np.random.default_rng(2)
    logits1001 = rng.normal(0, 3, (5, 1001))
    probs = scores("softmax_tensor", softmax(logits1001).astype(np.float32))
    conv = scores("logits1000", logits1001[:, 1:].astype(np.float32))  # background column dropped
    assign_offsets(probs, conv, num_classes=1001, offset=-1)
    assert (probs.offset, conv.offset) == (-1, 0)
    top = compare_topk(probs, conv)
    assert top.top1_agreement == 1.0 and top.top5_overlap == 1.0
    a, b, note = like_with_like(probs, conv)
    assert a.shape == b.shape == (5, 1000) and "softmax" in note and "dropped" in note


def test_disagreement_and_top5_overlap_numbers():
    base = np.tile(np.arange(10.0)[::-1], (4, 1))  # top-5 = 0..4 everywhere
    other = base.copy()
    other[0, [0, 1]] = other[0, [1, 0]]  # image 0: top-1 swapped, same top-5
    other[1, [4, 9]] = other[1, [9, 4]]  # image 1: one of the top-5 replaced
    a, b = scores("a", base), scores("b", other)
    assign_offsets(a, b)
    top = compare_topk(a, b, ["i0", "i1", "i2", "i3"])
    assert top.top1_agreement == pytest.approx(0.75)
    assert top.top5_overlap == pytest.approx((1 + 0.8 + 1 + 1) / 4)
    assert top.disagreements == [{"input": "i0", "original": 0, "converted": 1}]


def test_argmax_against_logits_is_top1_only():
    logits = np.random.default_rng(3).normal(0, 3, (6, 1001))
    a, b = scores("ArgMax", logits.argmax(1)), scores("logits", logits.astype(np.float32))
    assign_offsets(a, b, num_classes=1001, offset=-1)
    top = compare_topk(a, b)
    assert top.top1_agreement == 1.0 and top.top5_overlap is None
    assert like_with_like(a, b) is None
