"""Seeded, data-dependent refill of a detector's stripped weights (backend-neutral).

A structure file keeps everything an exporter wrote except the weights of its convolutions, dense layers and batch
norms. Refilling them with plain random values gives activations that vanish or explode and scores that are all
equal, and then every parity check passes trivially. So the weights are filled layer by layer, in dependency order,
on a small batch of real photographs:
- a kernel gets He-normal values;
- when a batch norm follows, its moving statistics become the measured per-channel statistics of its input (gamma
  U(0.8, 1.2), beta N(0, 0.1)), as a trained network's are;
- otherwise (batch norm folded into the conv by the exporter, or no batch norm) the kernel and bias are rescaled per
  output channel to the same effect: output channels with mean ~beta and std ~gamma;
- the prediction heads are filled last and together (class_heads.py): box regressions with std ~1 (what a trained
  regressor gives before the box coder's scales); class logits such that a handful of anchors per photograph score
  >= 0.5 for a few "active" classes and the rest stays far below: a few confident boxes per image, not none and not
  thousands.

A backend (onnx_refill, tf_refill) lists the `Layer`s and runs the partly filled graph on the calibration batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Role(str, Enum):
    HIDDEN = "hidden"
    BOX = "box"
    CLASS = "class"


@dataclass(frozen=True)
class HeadSpec:
    """How a class head's output channels map to (anchor, class column)."""

    columns: int  # class columns the head predicts per anchor (background included when the model has one)
    class_major: bool  # channel = column * anchors + anchor (view(N, C, -1)); else anchor * columns + column


@dataclass(frozen=True)
class Scoring:
    """How the model turns class logits into scores (what the bias search targets)."""

    softmax: bool
    background: int | None  # column of the background class, None when the model predicts none
    confident_per_image: float = 12.0  # anchors x active classes scoring >= 0.5, before NMS
    active_classes: int = 8


@dataclass
class Layer:
    """One weight-bearing op (or several ops sharing one kernel) and what follows it."""

    kernel: str
    measure: list[str]  # the op outputs to measure (one per op using the kernel), before bias / batch norm
    channel_axis: int  # axis of output channels in the measured tensors
    kernel_out_axis: int  # axis of the kernel that indexes output channels (after `kernel_view`)
    fan_in: int
    bias: str | None = None
    batch_norms: list[tuple[str, str, str, str]] = field(default_factory=list)  # (gamma, beta, mean, var) per op
    role: Role = Role.HIDDEN
    head: HeadSpec | None = None
    depends_on: set[str] = field(default_factory=set)  # kernels of the layers upstream of this one
    kernel_view: Callable[[np.ndarray], np.ndarray] | None = None  # reshape so kernel_out_axis indexes channels
    kernel_unview: Callable[[np.ndarray], np.ndarray] | None = None


# run(fetch, values, provisional): the fetched tensors on the calibration batch (concatenated on axis 0), with the
# weights in `values`; weights in `provisional` will still change (tensors depending on them must not be reused).
Runner = Callable[[Sequence[str], dict[str, np.ndarray], set[str]], list[np.ndarray]]

HIDDEN_STD = (0.8, 1.2)
VAR_FLOOR = 0.25  # relative to the layer's median: a channel that barely varies is not blown up


def calibrate(layers: Sequence[Layer], shapes: dict[str, tuple[int, ...]], run: Runner, seed: int,
              scoring: Scoring) -> dict[str, np.ndarray]:
    """Values for every slot the layers name: kernels, biases, batch-norm parameters."""
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    hidden = [layer for layer in layers if layer.role is Role.HIDDEN]
    heads = [layer for layer in layers if layer.role is not Role.HIDDEN]
    for wave in _waves(hidden):
        for layer in wave:
            fill_kernel(layer, shapes, values, rng)
        outputs = run([name for layer in wave for name in layer.measure], values, {layer.kernel for layer in wave})
        at = 0
        for layer in wave:
            measured = outputs[at:at + len(layer.measure)]
            at += len(layer.measure)
            _normalise(layer, measured, values, shapes, rng)
    if heads:
        from tests.structures.class_heads import calibrate_heads

        calibrate_heads(heads, shapes, run, values, scoring, rng)
    return values


def _waves(layers: Sequence[Layer]) -> list[list[Layer]]:
    """Layers grouped so that each group depends only on earlier groups (one graph run per group)."""
    by_kernel = {layer.kernel: layer for layer in layers}
    level: dict[str, int] = {}

    def depth(kernel: str) -> int:
        if kernel not in level:
            ups = [depth(k) for k in by_kernel[kernel].depends_on if k in by_kernel]
            level[kernel] = 1 + max(ups, default=-1)
        return level[kernel]

    groups: dict[int, list[Layer]] = {}
    for layer in layers:
        groups.setdefault(depth(layer.kernel), []).append(layer)
    return [groups[k] for k in sorted(groups)]


def fill_kernel(layer: Layer, shapes: dict[str, tuple[int, ...]], values: dict[str, np.ndarray],
                 rng: np.random.Generator) -> None:
    shape = shapes[layer.kernel]
    values[layer.kernel] = (rng.standard_normal(shape) * np.sqrt(2.0 / max(layer.fan_in, 1))).astype(np.float32)
    if layer.bias is not None:
        values[layer.bias] = np.zeros(shapes[layer.bias], np.float32)


def channel_stats(measured: Sequence[np.ndarray], axis: int) -> tuple[np.ndarray, np.ndarray]:
    flat = np.concatenate([np.moveaxis(m, axis, -1).reshape(-1, m.shape[axis]) for m in measured]).astype(np.float64)
    return flat.mean(axis=0), flat.var(axis=0)


def floored(var: np.ndarray) -> np.ndarray:
    return np.maximum(var, max(float(np.median(var)) * VAR_FLOOR, 1e-10))


def _normalise(layer: Layer, measured: Sequence[np.ndarray], values: dict[str, np.ndarray],
               shapes: dict[str, tuple[int, ...]], rng: np.random.Generator) -> None:
    """Batch norms take the measured statistics; otherwise kernel and bias are rescaled per output channel."""
    if layer.batch_norms:
        for out, (gamma, beta, mean, var) in zip(measured, layer.batch_norms):
            m, v = channel_stats([out], layer.channel_axis)
            channels = m.shape[0]
            values[gamma] = rng.uniform(*HIDDEN_STD, channels).astype(np.float32).reshape(shapes[gamma])
            values[beta] = (rng.standard_normal(channels) * 0.1).astype(np.float32).reshape(shapes[beta])
            values[mean] = m.astype(np.float32).reshape(shapes[mean])
            values[var] = floored(v).astype(np.float32).reshape(shapes[var])
        return
    m, v = channel_stats(measured, layer.channel_axis)
    channels = m.shape[0]
    scale = rng.uniform(*HIDDEN_STD, channels) / np.sqrt(floored(v))
    shift = rng.standard_normal(channels) * 0.1 - m * scale
    set_out_channels(layer, values, shapes, scale, shift)


def set_out_channels(layer: Layer, values: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                     scale: np.ndarray, shift: np.ndarray, add: np.ndarray | None = None) -> None:
    """kernel[out] = kernel[out] * scale[out] (+ add[out] on every element); bias = shift (when there is one)."""
    kernel = values[layer.kernel]
    view = layer.kernel_view(kernel) if layer.kernel_view else kernel
    shape = [1] * view.ndim
    shape[layer.kernel_out_axis] = scale.shape[0]
    view = view * scale.reshape(shape)
    if add is not None:
        view = view + add.reshape(shape)
    values[layer.kernel] = (layer.kernel_unview(view) if layer.kernel_unview else view).astype(np.float32)
    if layer.bias is not None:
        values[layer.bias] = shift.astype(np.float32).reshape(shapes[layer.bias])
    for gamma_n, beta_n, mean_n, var_n in layer.batch_norms:  # a head followed by a batch norm: make it an identity
        values[gamma_n] = np.ones(shapes[gamma_n], np.float32)
        values[beta_n] = np.zeros(shapes[beta_n], np.float32)
        values[mean_n] = np.zeros(shapes[mean_n], np.float32)
        values[var_n] = np.ones(shapes[var_n], np.float32)
