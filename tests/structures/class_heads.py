"""Refill of the prediction heads: box regressions of std ~1, and class logits with a realistic spread of scores.

Why not a plain per-class bias: a network of ReLUs with batch norm is nearly positively homogeneous, so a
photograph with twice the contrast has feature maps twice as large and logits twice as spread. With logit = z + b,
the high-contrast photograph then gets hundreds of confident anchors and a soft one none. So the class priors are
carried mostly by the kernel, along the "sum of the input features" direction (the output of an all-ones kernel,
S, which scales with contrast like z does): logit = s * (z - m * S) + beta * S / mean(S) + b. Whether an anchor is
confident then depends on the direction of its features, not their energy; the constant b only decides what flat,
featureless regions score (background, low). beta of the few active classes is found by bisection so that the
median calibration photograph has a handful of confident anchors; the other classes sit far below.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tests.structures.calibrate import Layer, Role, Runner, Scoring, channel_stats, fill_kernel, floored, \
    set_out_channels

BOX_STD = 1.0
CLASS_STD = 1.5
INACTIVE_MARGIN = 12.0  # energy-proportional offset of the never-confident classes below the active ones
FLAT_BACKGROUND = 1.0  # constant logit of the background column (softmax): featureless regions are background
FLAT_FOREGROUND = -1.0  # constant logit of the other columns


def calibrate_heads(heads: Sequence[Layer], shapes: dict[str, tuple[int, ...]], run: Runner,
                    values: dict[str, np.ndarray], scoring: Scoring, rng: np.random.Generator) -> None:
    fetch = [name for layer in heads for name in layer.measure]
    provisional = {layer.kernel for layer in heads}
    for layer in heads:
        values[layer.kernel] = np.ones(shapes[layer.kernel], np.float32)
        if layer.bias is not None:
            values[layer.bias] = np.zeros(shapes[layer.bias], np.float32)
    energy = _split(heads, run(fetch, values, provisional))  # S: what an all-ones kernel gives
    for layer in heads:
        fill_kernel(layer, shapes, values, rng)
    random = _split(heads, run(fetch, values, provisional))
    classes = []
    for layer, z, s in zip(heads, random, energy):
        if layer.role is Role.BOX:
            m, v = channel_stats(z, layer.channel_axis)
            scale = BOX_STD / np.sqrt(floored(v))
            set_out_channels(layer, values, shapes, scale, -m * scale)
        else:
            classes.append(_ClassHead(layer, z, s))
    if classes:
        _class_priors(classes, values, shapes, scoring, rng)


def _split(heads: Sequence[Layer], outputs: list[np.ndarray]) -> list[list[np.ndarray]]:
    out, at = [], 0
    for layer in heads:
        out.append(outputs[at:at + len(layer.measure)])
        at += len(layer.measure)
    return out


class _ClassHead:
    """One class head: its random logits centred along S and scaled (per channel), per anchor and column."""

    def __init__(self, layer: Layer, z: list[np.ndarray], s: list[np.ndarray]) -> None:
        self.layer = layer
        axis = layer.channel_axis
        flat_z = np.concatenate([np.moveaxis(a, axis, -1).reshape(-1, a.shape[axis]) for a in z]).astype(np.float64)
        flat_s = np.concatenate([np.moveaxis(a, axis, -1).reshape(-1, a.shape[axis]) for a in s]).astype(np.float64)
        # A head fed by a signed map (a separable conv's pointwise half reads the depthwise half directly) has no
        # energy direction: its priors are plain biases (S = 1).
        self.energy_prior = bool((flat_s >= 0).all() and flat_s.mean() > 1e-6)
        if not self.energy_prior:
            z_ones = [np.ones_like(a) for a in s]
            s, flat_s = z_ones, np.ones_like(flat_s)
        self.mean_s = float(flat_s.mean())
        self.m = flat_z.mean(axis=0) / self.mean_s  # centring along S: z - m * S has mean 0 per channel
        centred = flat_z - flat_s * self.m
        self.scale = CLASS_STD / np.sqrt(floored(centred.var(axis=0)))
        self.logits = [_per_anchor(_along(a, axis, self.scale, -self.m * self.scale, b), layer)
                       for a, b in zip(z, s)]  # [images, anchors, columns]
        self.energy = [_per_anchor(b, layer) / self.mean_s for b in s]

    def columns_of_channels(self) -> np.ndarray:
        head = self.layer.head
        assert head is not None
        channels = self.scale.shape[0]
        ch = np.arange(channels)
        return ch // (channels // head.columns) if head.class_major else ch % head.columns


def _along(x: np.ndarray, axis: int, scale: np.ndarray, minus_m_scale: np.ndarray, s: np.ndarray) -> np.ndarray:
    shape = [1] * x.ndim
    shape[axis] = -1
    return x * scale.reshape(shape) + s * minus_m_scale.reshape(shape)


def _per_anchor(measured: np.ndarray, layer: Layer) -> np.ndarray:
    """A class head's output -> [images, anchors, columns] (the order of anchors does not matter here)."""
    head = layer.head
    assert head is not None
    out = np.moveaxis(measured, layer.channel_axis, -1)
    n, channels = out.shape[0], out.shape[-1]
    anchors = channels // head.columns
    out = out.reshape(n, -1, channels)
    if head.class_major:
        out = out.reshape(n, -1, head.columns, anchors).transpose(0, 1, 3, 2)
    else:
        out = out.reshape(n, -1, anchors, head.columns)
    return out.reshape(n, -1, head.columns)


def _class_priors(classes: list[_ClassHead], values: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                  scoring: Scoring, rng: np.random.Generator) -> None:
    columns = classes[0].layer.head.columns
    z = np.concatenate([a for head in classes for a in head.logits], axis=1)
    e = np.concatenate([a for head in classes for a in head.energy], axis=1)
    foreground = [c for c in range(columns) if c != scoring.background]
    active = np.sort(rng.choice(foreground, size=min(scoring.active_classes, len(foreground)), replace=False))
    constant = np.full(columns, FLAT_FOREGROUND)
    if scoring.background is not None and scoring.softmax:
        constant[scoring.background] = FLAT_BACKGROUND

    def offsets(beta: float) -> np.ndarray:
        out = np.full(columns, beta - INACTIVE_MARGIN)
        out[active] = beta
        if scoring.background is not None:
            out[scoring.background] = 0.0
        return out

    def median_confident(beta: float) -> float:
        logits = z + e * offsets(beta) + constant
        if scoring.softmax:
            logits = logits - logits.max(axis=-1, keepdims=True)
            p = np.exp(logits[:, :, active]) / np.exp(logits).sum(axis=-1, keepdims=True)
        else:
            p = 1.0 / (1.0 + np.exp(-logits[:, :, active]))
        return float(np.median((p >= 0.5).sum(axis=(1, 2))))

    lo, hi = -40.0, 40.0  # the count grows with beta
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if median_confident(mid) < scoring.confident_per_image:
            lo = mid
        else:
            hi = mid
    beta = offsets(hi)
    for head in classes:
        cols = head.columns_of_channels()
        if head.energy_prior:
            add = beta[cols] / head.mean_s - head.m * head.scale
            set_out_channels(head.layer, values, shapes, head.scale, constant[cols], add=add)
        else:
            set_out_channels(head.layer, values, shapes, head.scale,
                             constant[cols] + beta[cols] - head.m * head.scale)
