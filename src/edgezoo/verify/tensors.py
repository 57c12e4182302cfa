"""Per-output error statistics between an original tensor and its converted counterpart.

Every figure is computed over all verification inputs at once (float64), so one outlier image shows in the maximum.
`required` holds the smallest tolerances that would pass (the Polygraphy idea: say by how much, not just "failed").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TensorStats:
    original: str
    converted: str
    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float  # |a - b| / |a|, over elements whose |a| is above 1e-6 of the tensor's range
    mean_abs_error: float
    cosine: float
    sqnr_db: float  # 10 log10(signal power / error power); inf when identical
    original_range: tuple[float, float]
    note: str = ""
    required: dict[str, float] = field(default_factory=dict)  # smallest tolerance that would pass, per figure

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def align(original: np.ndarray, converted: np.ndarray) -> tuple[np.ndarray, str]:
    """`converted` reshaped/transposed to the original's layout when that is unambiguous, with a note saying how.

    Handles the differences conversions introduce: NCHW vs NHWC feature maps, squeezed or added unit dims.
    """
    a, b = np.asarray(original), np.asarray(converted)
    if a.shape == b.shape:
        return b, ""
    if a.ndim == 4 and b.ndim == 4:
        if b.transpose(0, 2, 3, 1).shape == a.shape:
            return b.transpose(0, 2, 3, 1), "converted NCHW transposed to NHWC"
        if b.transpose(0, 3, 1, 2).shape == a.shape:
            return b.transpose(0, 3, 1, 2), "converted NHWC transposed to NCHW"
    if a.size == b.size and [d for d in a.shape if d != 1] == [d for d in b.shape if d != 1]:
        return b.reshape(a.shape), f"converted shape {list(b.shape)} reshaped to {list(a.shape)}"
    raise ValueError(f"shapes {list(a.shape)} and {list(b.shape)} cannot be aligned")


def compare(original: np.ndarray, converted: np.ndarray, original_name: str = "original",
            converted_name: str = "converted") -> TensorStats:
    """Error statistics of `converted` against `original` (aligned first; ValueError when impossible)."""
    b, note = align(original, converted)
    a = np.asarray(original, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    diff = np.abs(a - b)
    finite = np.isfinite(a) & np.isfinite(b)
    if not finite.all():
        nan = float("nan")
        return TensorStats(original_name, converted_name, tuple(a.shape), nan, nan, nan, nan, nan,
                           (nan, nan), note=(note + "; " if note else "") + "non-finite values",
                           required={"max_abs_error": nan, "min_cosine": nan})
    max_abs = float(diff.max()) if diff.size else 0.0
    mean_abs = float(diff.mean()) if diff.size else 0.0
    magnitude = np.abs(a)
    floor = 1e-6 * float(magnitude.max()) if magnitude.size else 0.0
    mask = magnitude > max(floor, 1e-30)
    max_rel = float((diff[mask] / magnitude[mask]).max()) if mask.any() else 0.0
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 and nb == 0:
        cosine = 1.0
    elif na == 0 or nb == 0:
        cosine = 0.0
    else:
        cosine = float(np.clip(np.dot(a.ravel(), b.ravel()) / (na * nb), -1.0, 1.0))
    signal, noise = float(np.sum(a * a)), float(np.sum((a - b) ** 2))
    sqnr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    rng = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    required = {"max_abs_error": max_abs, "max_rel_error": max_rel, "min_cosine": cosine, "min_sqnr_db": sqnr}
    return TensorStats(original_name, converted_name, tuple(a.shape), max_abs, max_rel, mean_abs, cosine, sqnr,
                       rng, note, required)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def looks_like_probabilities(values: np.ndarray, axis: int = -1) -> bool:
    """Rows that are non-negative and sum to 1 (a softmax output), as opposed to logits."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 0 or x.shape[axis] < 2 or not np.isfinite(x).all():
        return False
    return bool(x.min() >= -1e-6 and np.allclose(x.sum(axis=axis), 1.0, atol=1e-3))
