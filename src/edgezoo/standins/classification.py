"""Stand-ins for the MLPerf classification files: resnet50_v1.pb/.onnx and the mobilenet_v1_1.0_224 tgz/.onnx.

Each one has the published format, tensor names, shapes, dtypes and operator structure, with seeded random weights
calibrated to realistic activations (see standins/tf_build.py). FULL = the published layer sizes; REDUCED = the same
names at both ends and the same kinds of ops, with narrow layers (and one bottleneck per ResNet stage) for fast tests.

Deliberate differences from the published graphs (none visible at the recipe's inputs/outputs):
- convolutions are NHWC throughout (the published ResNet transposes to NCHW internally; TF's CPU kernels want NHWC);
- batch norms are FusedBatchNormV3 nodes named as the published FusedBatchNorm ones;
- ONNX opset 8 is emitted by tf2onnx 1.17 directly (the published resnet50_v1.onnx is opset 8, a later one 11).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo import zoo
from edgezoo.datasets import images
from edgezoo.graphs.convert import frozen_graph_to_onnx, frozen_graph_to_tflite
from edgezoo.preprocessing.card import preprocess
from edgezoo.standins import StandinVariant, register
from edgezoo.standins.tarball import deterministic_tgz
from edgezoo.standins.tf_build import FrozenGraphBuilder, Node, write_graph_def

RESNET_INPUT = "input_tensor"
RESNET_LOGITS = "resnet_model/dense/BiasAdd"
MOBILENET_INPUT = "input"
MOBILENET_LOGITS = "MobilenetV1/Logits/SpatialSqueeze"
MOBILENET_PREDICTIONS = "MobilenetV1/Predictions/Reshape_1"
MOBILENET_MEMBERS = ("mobilenet_v1_1.0_224_frozen.pb", "mobilenet_v1_1.0_224.tflite", "mobilenet_v1_1.0_224_info.txt")
NUM_CLASSES = 1001
# Mean BN offset before MobileNet's ReLU6: with beta 0 a BN+ReLU stack is chaotic (float rounding grows ~1.2x per
# layer, 5e-5 relative at the logits); beta ~1 keeps most units linear, as trained nets do, and float noise flat.
BETA_MEAN = 1.0
CALIBRATION_EXTRA_RANDOM = 6


@dataclass(frozen=True)
class ResNetShape:
    base: int  # filters of the first stage (64 published)
    blocks: tuple[int, ...]  # bottlenecks per stage ([3, 4, 6, 3] published)


@dataclass(frozen=True)
class MobileNetShape:
    depth: float  # depth multiplier (1.0 published)


RESNET_SHAPES = {StandinVariant.FULL: ResNetShape(64, (3, 4, 6, 3)), StandinVariant.REDUCED: ResNetShape(8, (1, 1, 1, 1))}
MOBILENET_SHAPES = {StandinVariant.FULL: MobileNetShape(1.0), StandinVariant.REDUCED: MobileNetShape(0.25)}
# TF-slim MobileNet v1 body: (stride, output channels at depth 1.0) for Conv2d_1..Conv2d_13 (depthwise separable).
MOBILENET_BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512), (1, 512),
                    (1, 512), (1, 512), (2, 1024), (1, 1024))


def calibration_batch(card_id: str, seed: int) -> np.ndarray:
    """The card-preprocessed images the builders calibrate on: the verification set plus extra seeded images.

    The verification photographs are included on purpose: calibration must see the kind of input the parity checks
    use, or a shared offset between photographs and synthetic images can give every photograph the same top-1.
    """
    spec = zoo.get_card(card_id).preprocess
    pictures = images.verification_images() + images.random_images(CALIBRATION_EXTRA_RANDOM, seed=seed + 101)
    return np.concatenate([preprocess(img, spec, layout="NHWC") for _, img in pictures]).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- ResNet50 v1.5
def build_resnet50_graph(variant: StandinVariant, seed: int, calibration: np.ndarray | None = None) -> Any:
    """The ResNet50 v1.5 GraphDef (TF official models r1.13 naming: resnet_model/conv2d_N, batch_normalization_N)."""
    shape = RESNET_SHAPES[variant]
    calib = calibration if calibration is not None else calibration_batch("resnet50-v1.5", seed)
    b = FrozenGraphBuilder(seed)
    tf = b.tf
    x = b.placeholder(RESNET_INPUT, calib, shape=[None, 224, 224, 3])
    with b.scope("resnet_model", exact=True):
        x = _conv_fixed_padding(b, x, shape.base, 7, 2)
        x = b.apply(tf.identity, [x], name="initial_conv")
        x = _bn(b, x)
        x = b.apply(tf.nn.relu, [x], name="Relu")
        with b.scope("max_pooling2d"):
            x = b.apply(tf.nn.max_pool2d, [x], name="MaxPool", ksize=3, strides=2, padding="SAME")
        x = b.apply(tf.identity, [x], name="initial_max_pool")
        for stage, count in enumerate(shape.blocks):
            filters = shape.base * 2 ** stage
            for i in range(count):
                x = _bottleneck(b, x, filters, stride=(1 if stage == 0 or i > 0 else 2), project=(i == 0))
            x = b.apply(tf.identity, [x], name=f"block_layer{stage + 1}")
        x = b.apply(tf.reduce_mean, [x], name="Mean", axis=[1, 2], keepdims=True)
        x = b.apply(tf.identity, [x], name="final_reduce_mean")
        x = b.apply(tf.squeeze, [x], name="Squeeze", axis=[1, 2])
        w, bias = b.classifier_weights(x.v, NUM_CLASSES)
        with b.scope("dense"):
            x = b.apply(tf.matmul, [x], [b.weight("kernel", w)], name="MatMul")
            x = b.apply(tf.nn.bias_add, [x], [b.weight("bias", bias)], name="BiasAdd")
        logits = b.apply(tf.identity, [x], name="final_dense")
    b.apply(tf.argmax, [logits], name="ArgMax", axis=1, output_type=tf.int64)
    b.apply(tf.nn.softmax, [logits], name="softmax_tensor")
    return b.graph_def()


def _conv_fixed_padding(b: FrozenGraphBuilder, x: Node, filters: int, k: int, stride: int) -> Node:
    # The official model pads explicitly before strided convolutions (padding independent of input size).
    if stride > 1:
        total = k - 1
        pads = [[0, 0], [total // 2, total - total // 2], [total // 2, total - total // 2], [0, 0]]
        x = b.apply(b.tf.pad, [x], [np.asarray(pads, np.int32)], name="Pad")
    with b.scope("conv2d"):
        return b.conv2d(x, filters, k, stride, "VALID" if stride > 1 else "SAME")


def _bn(b: FrozenGraphBuilder, x: Node, gamma_scale: float = 1.0) -> Node:
    with b.scope("batch_normalization"):
        return b.batch_norm(x, op_name="FusedBatchNorm", gamma_scale=gamma_scale)


def _bottleneck(b: FrozenGraphBuilder, x: Node, filters: int, stride: int, project: bool) -> Node:
    """v1.5 bottleneck: the stride sits in the 3x3 convolution (v1 had it in the first 1x1)."""
    tf = b.tf
    shortcut = x
    if project:
        shortcut = _bn(b, _conv_fixed_padding(b, x, 4 * filters, 1, stride))
    y = b.apply(tf.nn.relu, [_bn(b, _conv_fixed_padding(b, x, filters, 1, 1))], name="Relu")
    y = b.apply(tf.nn.relu, [_bn(b, _conv_fixed_padding(b, y, filters, 3, stride))], name="Relu")
    # A small gamma on the branch's last BN keeps the residual sum O(1) through 16 blocks.
    y = _bn(b, _conv_fixed_padding(b, y, 4 * filters, 1, 1), gamma_scale=0.5)
    y = b.apply(tf.add, [y, shortcut], name="add")
    return b.apply(tf.nn.relu, [y], name="Relu")


@register("resnet50-pb", version=2)
def build_resnet50_pb(dest: Path, variant: StandinVariant, seed: int) -> None:
    """resnet50_v1.pb: ResNet50 v1.5 frozen graph, input_tensor -> ArgMax, softmax_tensor."""
    write_graph_def(build_resnet50_graph(variant, seed), dest)


def _resnet50_onnx(dest: Path, variant: StandinVariant, seed: int, opset: int) -> None:
    with tempfile.TemporaryDirectory(prefix="edgezoo-standin-") as tmp:
        pb = write_graph_def(build_resnet50_graph(variant, seed), Path(tmp) / "resnet50_v1.pb")
        # As published: tf2onnx --inputs-as-nchw input_tensor:0, symbolic batch, the two published outputs.
        frozen_graph_to_onnx(pb, [RESNET_INPUT], ["ArgMax", "softmax_tensor"], dest, opset=opset,
                             inputs_as_nchw=[RESNET_INPUT])


@register("resnet50-onnx-opset8", version=2)
def build_resnet50_onnx_opset8(dest: Path, variant: StandinVariant, seed: int) -> None:
    """resnet50_v1.onnx (opset 8): tf2onnx of the stand-in .pb, NCHW input_tensor:0, symbolic batch."""
    _resnet50_onnx(dest, variant, seed, 8)


@register("resnet50-onnx-opset11", version=2)
def build_resnet50_onnx_opset11(dest: Path, variant: StandinVariant, seed: int) -> None:
    """resnet50_v1.onnx (opset 11): tf2onnx of the stand-in .pb, NCHW input_tensor:0, symbolic batch."""
    _resnet50_onnx(dest, variant, seed, 11)


# ---------------------------------------------------------------------------------------------------- MobileNet v1
def build_mobilenet_graph(variant: StandinVariant, seed: int, calibration: np.ndarray | None = None) -> Any:
    """The TF-slim MobileNet v1 1.0 224 GraphDef (weights under MobilenetV1/..., ops under MobilenetV1/MobilenetV1/...)."""
    depth = MOBILENET_SHAPES[variant].depth
    calib = calibration if calibration is not None else calibration_batch("mobilenet-v1", seed)
    b = FrozenGraphBuilder(seed)
    tf = b.tf

    def ch(n: int) -> int:
        return max(int(n * depth), 8)

    x = b.placeholder(MOBILENET_INPUT, calib, shape=[None, 224, 224, 3])
    with b.weights_moved("MobilenetV1/MobilenetV1/", "MobilenetV1/"):
        x = _mobilenet_body(b, x, ch)
    with b.scope("MobilenetV1/Logits", exact=True):
        with b.scope("AvgPool_1a", exact=True):
            x = b.apply(tf.nn.avg_pool2d, [x], name="AvgPool", ksize=7, strides=2, padding="VALID")
        with b.scope("Dropout_1b", exact=True):
            x = b.apply(tf.identity, [x], name="Identity")  # dropout at inference
        w, bias = b.classifier_weights(x.v, NUM_CLASSES)
        with b.scope("Conv2d_1c_1x1", exact=True):
            # Weights are created at MobilenetV1/Logits/Conv2d_1c_1x1/{weights,biases} as slim does.
            x = b.apply(tf.nn.conv2d, [x], [b.weight("weights", w.reshape(1, 1, *w.shape))], name="Conv2D",
                        strides=[1, 1, 1, 1], padding="SAME")
            x = b.apply(tf.nn.bias_add, [x], [b.weight("biases", bias)], name="BiasAdd")
        logits = b.apply(tf.squeeze, [x], name="SpatialSqueeze", axis=[1, 2])
    with b.scope("MobilenetV1/Predictions", exact=True):
        # slim.softmax: flatten to 2-D, softmax, restore the logits' shape.
        flat = b.apply(tf.reshape, [logits], [np.asarray([-1, NUM_CLASSES], np.int32)], name="Reshape")
        probs = b.apply(tf.nn.softmax, [flat], name="Softmax")
        shape = b.apply(tf.shape, [logits], name="Shape")
        b.apply(tf.reshape, [probs, shape], name="Reshape_1")
    return b.graph_def()


def _mobilenet_body(b: FrozenGraphBuilder, x: Node, ch: Any) -> Node:
    x = _slim_conv(b, "Conv2d_0", lambda: b.conv2d(x, ch(32), 3, 2, kernel_name="weights"))
    for i, (stride, out) in enumerate(MOBILENET_BLOCKS, start=1):
        x = _slim_conv(b, f"Conv2d_{i}_depthwise", lambda x=x, s=stride: b.depthwise_conv2d(x, 3, s))
        x = _slim_conv(b, f"Conv2d_{i}_pointwise", lambda x=x, o=out: b.conv2d(x, ch(o), 1, 1, kernel_name="weights"))
    return x


def _slim_conv(b: FrozenGraphBuilder, name: str, conv: Any) -> Node:
    """A slim conv layer: weights at MobilenetV1/<name>/..., ops at MobilenetV1/MobilenetV1/<name>/... (as frozen)."""
    tf = b.tf
    with b.scope(f"MobilenetV1/MobilenetV1/{name}", exact=True):
        y = conv()
        with b.scope("BatchNorm", exact=True):
            y = b.batch_norm(y, op_name="FusedBatchNorm", beta_mean=BETA_MEAN)
        return b.apply(tf.nn.relu6, [y], name="Relu6")


def mobilenet_info_text(variant: StandinVariant) -> str:
    return ("Model: mobilenet_v1_1.0_224 (edgezoo STAND-IN, random weights)\n"
            f"Variant: {variant.value}\n"
            "Input: input [1,224,224,3] float32, values in [-1,1]\n"
            f"Output: {MOBILENET_PREDICTIONS} [1,1001] softmax (class 0 = background)\n")


@register("mobilenet-v1-tgz", version=3)
def build_mobilenet_tgz(dest: Path, variant: StandinVariant, seed: int) -> None:
    """mobilenet_v1_1.0_224.tgz: frozen .pb (TF-slim names), the TFLite converted from it, the info file."""
    with tempfile.TemporaryDirectory(prefix="edgezoo-standin-") as tmp:
        folder = Path(tmp)
        pb = write_graph_def(build_mobilenet_graph(variant, seed), folder / MOBILENET_MEMBERS[0])
        frozen_graph_to_tflite(pb, {MOBILENET_INPUT: [1, 224, 224, 3]}, [MOBILENET_PREDICTIONS],
                               folder / MOBILENET_MEMBERS[1])
        (folder / MOBILENET_MEMBERS[2]).write_text(mobilenet_info_text(variant))
        deterministic_tgz(dest, {m: folder / m for m in MOBILENET_MEMBERS})


@register("mobilenet-v1-onnx", version=3)
def build_mobilenet_onnx(dest: Path, variant: StandinVariant, seed: int) -> None:
    """mobilenet_v1_1.0_224.onnx (opset 8): tf2onnx of the stand-in frozen graph, NCHW input:0."""
    with tempfile.TemporaryDirectory(prefix="edgezoo-standin-") as tmp:
        pb = write_graph_def(build_mobilenet_graph(variant, seed), Path(tmp) / MOBILENET_MEMBERS[0])
        frozen_graph_to_onnx(pb, [MOBILENET_INPUT], [MOBILENET_PREDICTIONS], dest, opset=8,
                             inputs_as_nchw=[MOBILENET_INPUT])
