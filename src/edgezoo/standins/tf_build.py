"""Build frozen TF GraphDefs with published node names and realistic random weights.

Why not Keras: Keras renames nodes (instance suffixes), and the stand-ins must carry the exact names of the published
graphs. Why calibrate: random weights with naive initialisation give activations that vanish or explode (a random
Keras MobileNet gives logits around 1e-19), and then every parity check passes trivially. So every op is built twice:
once as a graph op (exact name, via the builder's scope stack) and once eagerly on a small calibration batch. A batch
norm then takes the *measured* per-channel mean and variance of its input as its moving statistics, which keeps each
layer's output near zero mean and unit variance, the way a trained network behaves. The classifier head is
calibrated so logits vary across images (distinct top-1) and have a softmax-worthy spread.

Usable by any stand-in family (classification, SSD backbones): `FrozenGraphBuilder` is generic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def _tf() -> Any:
    import tensorflow as tf  # lazy: 5-6 s to import

    return tf


@dataclass
class Node:
    """A tensor in the graph under construction (`g`) and its value on the calibration batch (`v`)."""

    g: Any
    v: np.ndarray

    @property
    def channels(self) -> int:
        return int(self.v.shape[-1])


class FrozenGraphBuilder:
    """Op-by-op builder of a frozen (all-constant) GraphDef that calibrates as it goes.

    Names: `scope("conv2d")` opens a uniquified scope (conv2d, conv2d_1, ... as tf.layers would name them);
    `scope("MobilenetV1/", exact=True)` re-enters an exact one. Ops get TF's default uniquified names inside the
    current scope (Relu, Relu_1, ...), or the explicit `name` given.
    """

    # Floors relative to the layer's median, so a channel that barely varies on the calibration images is not
    # scaled up into a float-noise amplifier (trained nets do not blow up rounding errors layer after layer).
    VAR_FLOOR = 0.25
    FEATURE_SD_FLOOR = 0.5

    def __init__(self, seed: int) -> None:
        tf = _tf()
        self.tf = tf
        self.graph = tf.Graph()
        self.rng = np.random.default_rng(seed)
        self._scopes: list[str] = []
        self._weight_prefix: tuple[str, str] | None = None

    # ------------------------------------------------------------------ naming
    @property
    def prefix(self) -> str:
        return self._scopes[-1] if self._scopes else ""

    @contextmanager
    def scope(self, name: str, *, exact: bool = False) -> Iterator[str]:
        """Open a name scope; uniquified against the graph unless `exact`."""
        full = self.prefix + name.rstrip("/")
        if not exact:
            full = self.graph.unique_name(full, mark_as_used=True)
        self._scopes.append(full + "/")
        try:
            yield full
        finally:
            self._scopes.pop()

    @contextmanager
    def weights_moved(self, op_prefix: str, weight_prefix: str) -> Iterator[None]:
        """Put weights created under scope `op_prefix...` at `weight_prefix...` instead.

        TF-slim frozen graphs keep variables at MobilenetV1/Conv2d_0/weights but ops at
        MobilenetV1/MobilenetV1/Conv2d_0/Conv2D; this reproduces that split.
        """
        saved = self._weight_prefix
        self._weight_prefix = (op_prefix, weight_prefix)
        try:
            yield
        finally:
            self._weight_prefix = saved

    def _weight_scope(self) -> str:
        if self._weight_prefix and self.prefix.startswith(self._weight_prefix[0]):
            return self._weight_prefix[1] + self.prefix[len(self._weight_prefix[0]):]
        return self.prefix

    @contextmanager
    def _graph_scope(self, prefix: str | None = None) -> Iterator[None]:
        prefix = self.prefix if prefix is None else prefix
        with self.graph.as_default():
            if prefix:
                with self.graph.name_scope(prefix):  # trailing "/" = re-enter exactly, no uniquifying
                    yield
            else:
                yield

    # ------------------------------------------------------------------ building blocks
    def placeholder(self, name: str, calibration: np.ndarray, shape: Sequence[int | None] | None = None,
                    dtype: str = "float32") -> Node:
        tf = self.tf
        with self._graph_scope():
            g = tf.compat.v1.placeholder(getattr(tf, dtype), shape=shape, name=name)
        return Node(g, np.asarray(calibration))

    def const(self, name: str, value: np.ndarray, *, read: bool = True) -> Any:
        """A weight: a Const node (plus the '<name>/read' Identity a frozen variable leaves behind)."""
        tf = self.tf
        prefix = self._weight_scope()
        with self._graph_scope(prefix):
            c = tf.constant(np.asarray(value), name=name)
            if read:
                with self.graph.name_scope(prefix + name + "/"):
                    c = tf.identity(c, name="read")
        return c

    def apply(self, fn: Callable[..., Any], inputs: Sequence[Node], weights: Sequence[np.ndarray | Any] = (),
              *, name: str | None = None, **attrs: Any) -> Node:
        """fn(*inputs, *weights, **attrs) as a graph op (named) and eagerly on the calibration values.

        `weights` are (graph tensor, numpy value) pairs from `weight()`, or plain numpy values used as-is.
        """
        g_w = [w[0] if isinstance(w, tuple) else w for w in weights]
        v_w = [w[1] if isinstance(w, tuple) else w for w in weights]
        with self._graph_scope():
            kwargs = dict(attrs)
            if name is not None:
                kwargs["name"] = name
            g = fn(*[i.g for i in inputs], *g_w, **kwargs)
        v = fn(*[i.v for i in inputs], *v_w, **attrs)
        return Node(g, np.asarray(v))

    def weight(self, name: str, value: np.ndarray, *, read: bool = True) -> tuple[Any, np.ndarray]:
        value = np.asarray(value, dtype=np.float32)
        return self.const(name, value, read=read), value

    # ------------------------------------------------------------------ layers (realistic initialisation)
    def he_kernel(self, kh: int, kw: int, cin: int, cout: int) -> np.ndarray:
        """He-normal conv kernel HWIO: keeps the second moment through conv + ReLU."""
        std = np.sqrt(2.0 / (kh * kw * cin))
        return (self.rng.standard_normal((kh, kw, cin, cout)) * std).astype(np.float32)

    def conv2d(self, x: Node, cout: int, k: int, stride: int, padding: str = "SAME", *,
               kernel_name: str = "kernel", op_name: str = "Conv2D", bias: bool = False) -> Node:
        tf = self.tf
        kernel = self.weight(kernel_name, self.he_kernel(k, k, x.channels, cout))
        y = self.apply(tf.nn.conv2d, [x], [kernel], name=op_name, strides=[1, stride, stride, 1], padding=padding)
        if bias:
            b = self.weight("bias" if kernel_name == "kernel" else "biases", np.zeros(cout, np.float32))
            y = self.apply(tf.nn.bias_add, [y], [b], name="BiasAdd")
        return y

    def depthwise_conv2d(self, x: Node, k: int, stride: int, *, kernel_name: str = "depthwise_weights",
                         op_name: str = "depthwise") -> Node:
        tf = self.tf
        std = np.sqrt(2.0 / (k * k))  # fan-in of a depthwise filter is k*k
        kernel = self.weight(kernel_name, (self.rng.standard_normal((k, k, x.channels, 1)) * std).astype(np.float32))
        return self.apply(tf.nn.depthwise_conv2d, [x], [kernel], name=op_name, strides=[1, stride, stride, 1],
                          padding="SAME")

    def batch_norm(self, x: Node, *, op_name: str = "FusedBatchNormV3", gamma_scale: float = 1.0,
                   beta_mean: float = 0.0,
                   names: tuple[str, str, str, str] = ("gamma", "beta", "moving_mean", "moving_variance"),
                   epsilon: float = 1e-3) -> Node:
        """Inference batch norm whose moving statistics are the measured statistics of `x` on the calibration batch.

        gamma ~ gamma_scale * U(0.8, 1.2) and beta ~ N(0, 0.1): channels differ as in a trained net, but the output
        stays O(1). `gamma_scale` < 1 on the last BN of a residual branch keeps the residual sum from growing.
        """
        tf = self.tf
        c = x.channels
        axes = tuple(range(x.v.ndim - 1))
        mean = x.v.mean(axis=axes).astype(np.float32)
        var = x.v.var(axis=axes)
        var = np.maximum(var, max(float(np.median(var)) * self.VAR_FLOOR, 1e-6)).astype(np.float32)
        gamma = (gamma_scale * self.rng.uniform(0.8, 1.2, c)).astype(np.float32)
        beta = (beta_mean + self.rng.standard_normal(c) * 0.1).astype(np.float32)
        weights = [self.weight(n, v) for n, v in zip(names, (gamma, beta, mean, var))]

        def fused(t: Any, g: Any, b: Any, m: Any, v: Any, name: str | None = None) -> Any:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(t, g, b, mean=m, variance=v, epsilon=epsilon,
                                                       is_training=False, name=name)
            return y

        return self.apply(fused, [x], weights, name=op_name)

    def classifier_weights(self, features: np.ndarray, classes: int, spread: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
        """Dense weights [F, classes] and bias whose logits vary across images with std ~`spread` per class.

        Pooled features share a large common component across images; random weights on it give every image the
        same top-1. Standardising the features by their calibration mean/std first makes the image-specific part
        decide the ranking, as in a trained classifier.
        """
        f = features.reshape(features.shape[0], -1).astype(np.float64)
        mu = f.mean(axis=0)
        sd = f.std(axis=0)
        floor = max(float(np.median(sd[sd > 0])) if np.any(sd > 0) else 1.0, 1e-6) * self.FEATURE_SD_FLOOR
        sd = np.maximum(sd, floor)
        w0 = self.rng.standard_normal((f.shape[1], classes)) / np.sqrt(f.shape[1])
        w = w0 / sd[:, None] * spread
        b = -(mu @ w) + self.rng.standard_normal(classes) * 0.1 * spread
        return w.astype(np.float32), b.astype(np.float32)

    # ------------------------------------------------------------------ output
    def graph_def(self) -> Any:
        return self.graph.as_graph_def()

    def write(self, dest: Path) -> Path:
        return write_graph_def(self.graph_def(), dest)


def write_graph_def(graph_def: Any, dest: Path) -> Path:
    """Serialise a GraphDef byte-for-byte reproducibly (protobuf map fields, e.g. node attrs, are otherwise
    written in arbitrary order, so the same graph would get a different sha256 on every build)."""
    dest = Path(dest)
    dest.write_bytes(graph_def.SerializeToString(deterministic=True))
    return dest

