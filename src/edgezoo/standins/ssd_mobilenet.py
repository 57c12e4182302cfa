"""Stand-ins for ssd_mobilenet_v1_coco_2018_01_28.tar.gz (frozen graph + pipeline.config) and its published ONNX.

The frozen graph has the published interface and the node names people do surgery on:
uint8 `image_tensor` [N, H, W, 3] of any size -> Preprocessor (ToFloat, ResizeBilinear to 300x300 without half-pixel
centres, mul 2/255, `Preprocessor/sub`) -> MobileNet v1 (TF-slim names, depth 1.0) with the SSD extra layers ->
six feature maps 19, 10, 5, 3, 2, 1 -> `BoxPredictor_{0..5}/{BoxEncodingPredictor,ClassPredictor}/BiasAdd` (1x1
convs, 3 then 6 boxes per location, 91 classes) -> `concat` [N, 1917, 1, 4], `concat_1` [N, 1917, 91], `Squeeze` ->
the anchors computed by TF ops under `MultipleGridAnchorGenerator` (corner form, `.../Concatenate/concat`) ->
`Postprocessor`: box decoding (faster_rcnn_box_coder 10/10/5/5), `scale_logits`, `convert_scores` (sigmoid), the
background column sliced off, boxes clipped to the image window, per-class NMS (score > 0.3, IoU 0.6, 100 per class,
100 in total) -> `num_detections`, `detection_boxes`, `detection_scores`, `detection_classes` (COCO ids 1..90).

Weights are random but realistic: batch norms take the measured statistics of a calibration batch (real photographs
+ seeded images, see standins/tf_build.py), and the class head is calibrated so a handful of anchors per image
score above the 0.3 threshold, depending on the image content. The anchors here are an independent TF-op
implementation of the OD API generator (not edgezoo.detection.anchors), so the recipe's cross-check is not circular.

Deliberate differences from the published graph (none visible to the recipes): NMS is one CombinedNonMaxSuppression
op (the OD API unrolls 90 NonMaxSuppressionV3 ops inside a batch while-loop; same per-class semantics); batch norms
are FusedBatchNormV3; reshapes use static shapes with a -1 batch.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo import zoo
from edgezoo.core.errors import EdgezooError
from edgezoo.datasets import images
from edgezoo.graphs import onnx_model
from edgezoo.graphs.convert import frozen_graph_to_onnx
from edgezoo.preprocessing.card import preprocess
from edgezoo.standins import StandinVariant, register
from edgezoo.standins import ssd_tf_ops
from edgezoo.standins.ssd_mobilenet_config import PIPELINE_CONFIG
from edgezoo.standins.tarball import deterministic_tgz
from edgezoo.standins.tf_build import FrozenGraphBuilder, Node, write_graph_def

FOLDER = "ssd_mobilenet_v1_coco_2018_01_28"
GRAPH_MEMBER = f"{FOLDER}/frozen_inference_graph.pb"
CONFIG_MEMBER = f"{FOLDER}/pipeline.config"
INPUT = "image_tensor"
OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
ANCHOR_TENSOR = "MultipleGridAnchorGenerator/Concatenate/concat"
NUM_CLASSES = ssd_tf_ops.NUM_CLASSES
SCORE_THRESHOLD = ssd_tf_ops.SCORE_THRESHOLD
SIZE = 300
# (stride, channels at depth 1.0) of MobileNet v1's Conv2d_1..13 depthwise-separable blocks.
MOBILENET_BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512), (1, 512),
                    (1, 512), (1, 512), (2, 1024), (1, 1024))
EXTRA_DEPTHS = (512, 256, 256, 128)  # SSD layers after Conv2d_13_pointwise (feature maps 5, 3, 2, 1)
# Expected anchors above threshold per image and layer before NMS (calibration target for the class heads).
TARGET_HITS = (6.0, 5.0, 3.0, 2.0, 1.0, 1.0)


@dataclass(frozen=True)
class SsdShape:
    depth: float  # MobileNet depth multiplier
    min_depth: int


SHAPES = {StandinVariant.FULL: SsdShape(1.0, 16), StandinVariant.REDUCED: SsdShape(0.125, 8)}


def _tf() -> Any:
    import tensorflow as tf  # lazy

    return tf


def calibration_images(seed: int) -> np.ndarray:
    """uint8 [B, 300, 300, 3]: the verification photographs and seeded images, resized as the card says."""
    spec = zoo.get_card("ssd-mobilenet-v1").preprocess
    pictures = images.verification_images() + images.random_images(6, seed=seed + 404)
    return np.concatenate([preprocess(img, spec, dtype="uint8") for _, img in pictures])


# ---------------------------------------------------------------------------------------------------- backbone
def slim_conv(b: FrozenGraphBuilder, scope: str, conv: Any) -> Node:
    tf = b.tf
    with b.scope(scope, exact=True):
        y = conv()
        with b.scope("BatchNorm", exact=True):
            y = b.batch_norm(y, op_name="FusedBatchNorm")
        return b.apply(tf.nn.relu6, [y], name="Relu6")


def _feature_maps(b: FrozenGraphBuilder, x: Node, shape: SsdShape) -> list[Node]:
    def ch(n: int) -> int:
        return max(int(n * shape.depth), shape.min_depth)

    base = "FeatureExtractor/MobilenetV1/MobilenetV1/"
    maps = []
    with b.weights_moved(base, "FeatureExtractor/MobilenetV1/"):
        x = slim_conv(b, base + "Conv2d_0", lambda: b.conv2d(x, ch(32), 3, 2, kernel_name="weights"))
        for i, (stride, out) in enumerate(MOBILENET_BLOCKS, start=1):
            x = slim_conv(b, f"{base}Conv2d_{i}_depthwise", lambda x=x, s=stride: b.depthwise_conv2d(x, 3, s))
            x = slim_conv(b, f"{base}Conv2d_{i}_pointwise",
                           lambda x=x, o=out: b.conv2d(x, ch(o), 1, 1, kernel_name="weights"))
            if i in (11, 13):
                maps.append(x)
    for k, depth in enumerate(EXTRA_DEPTHS, start=2):
        prefix = "FeatureExtractor/MobilenetV1/Conv2d_13_pointwise"
        x = slim_conv(b, f"{prefix}_1_Conv2d_{k}_1x1_{depth // 2}",
                       lambda x=x, d=depth: b.conv2d(x, ch(d // 2), 1, 1, kernel_name="weights"))
        x = slim_conv(b, f"{prefix}_2_Conv2d_{k}_3x3_s2_{depth}",
                       lambda x=x, d=depth: b.conv2d(x, ch(d), 3, 2, kernel_name="weights"))
        maps.append(x)
    return maps


# ---------------------------------------------------------------------------------------------------- heads
def head_conv(b: FrozenGraphBuilder, x: Node, w: np.ndarray, bias: np.ndarray) -> Node:
    tf = b.tf
    y = b.apply(tf.nn.conv2d, [x], [b.weight("weights", w.reshape(1, 1, *w.shape))], name="Conv2D",
                strides=[1, 1, 1, 1], padding="SAME")
    return b.apply(tf.nn.bias_add, [y], [b.weight("biases", bias)], name="BiasAdd")


def standardised_weights(b: FrozenGraphBuilder, feats: np.ndarray, outputs: int,
                          spread: float) -> tuple[np.ndarray, np.ndarray]:
    """1x1 conv weights on per-channel standardised features: outputs ~ N(0, spread^2), varying with content."""
    f = feats.reshape(-1, feats.shape[-1]).astype(np.float64)
    mu, sd = f.mean(axis=0), f.std(axis=0)
    sd = np.maximum(sd, max(float(np.median(sd)), 1e-6) * 0.1)
    w = b.rng.standard_normal((f.shape[1], outputs)) / np.sqrt(f.shape[1]) / sd[:, None] * spread
    return w, -(mu @ w)


def class_bias(b: FrozenGraphBuilder, logits: np.ndarray, boxes: int, hits: float, num_classes: int = NUM_CLASSES,
               threshold: float = SCORE_THRESHOLD) -> np.ndarray:
    """Biases putting on average `hits` (anchor, class) pairs per image above the score threshold.

    The hits are shared among the classes with random weights (a few frequent classes, many rare ones), as a trained
    detector's class frequencies are uneven.
    """
    threshold_logit = math.log(threshold / (1 - threshold))
    batch = logits.shape[0]
    per_anchor = logits.reshape(batch, -1, boxes, num_classes + 1)
    share = b.rng.dirichlet(np.full(num_classes, 0.3))
    bias = np.zeros((boxes, num_classes + 1))
    bias[:, 0] = 2.0  # background: not used by the post-processing (sigmoid scores, column 0 dropped)
    cells = per_anchor.shape[1] * boxes
    for c in range(num_classes):
        values = per_anchor[..., c + 1].reshape(-1)
        rate = min(hits * share[c] / cells, 0.5)
        if rate * values.size < 0.5:
            bias[:, c + 1] = threshold_logit - values.max() - 1.0  # this class never fires on calibration images
        else:
            bias[:, c + 1] = threshold_logit - np.quantile(values, 1.0 - rate)
    return bias.reshape(-1)


def _box_predictors(b: FrozenGraphBuilder, maps: list[Node], boxes_per_location: list[int]) -> tuple[Node, Node]:
    tf = b.tf
    box_parts, class_parts = [], []
    for i, (fmap, boxes) in enumerate(zip(maps, boxes_per_location)):
        h, w = fmap.v.shape[1:3]
        with b.scope(f"BoxPredictor_{i}", exact=True):
            with b.scope("BoxEncodingPredictor", exact=True):
                wb, bb = standardised_weights(b, fmap.v, boxes * 4, spread=0.8)
                enc = head_conv(b, fmap, wb.astype(np.float32), bb.astype(np.float32))
            with b.scope("ClassPredictor", exact=True):
                wc, bc = standardised_weights(b, fmap.v, boxes * (NUM_CLASSES + 1), spread=1.2)
                raw = fmap.v.reshape(-1, fmap.channels).astype(np.float64) @ wc + bc
                bc = bc + class_bias(b, raw.reshape(fmap.v.shape[0], -1), boxes, TARGET_HITS[i])
                cls = head_conv(b, fmap, wc.astype(np.float32), bc.astype(np.float32))
            box_parts.append(b.apply(tf.reshape, [enc], [np.array([-1, h * w * boxes, 1, 4], np.int32)],
                                     name="Reshape"))
            class_parts.append(b.apply(tf.reshape, [cls], [np.array([-1, h * w * boxes, NUM_CLASSES + 1], np.int32)],
                                       name="Reshape_1"))

    def concat(*parts: Any, name: str | None = None) -> Any:
        return tf.concat(list(parts), axis=1, name=name)

    return b.apply(concat, box_parts, name="concat"), b.apply(concat, class_parts, name="concat_1")


# ---------------------------------------------------------------------------------------------------- anchors
def _anchors(b: FrozenGraphBuilder, grids: list[tuple[int, int]]) -> Node:
    tf = b.tf
    layers = []
    with b.scope("MultipleGridAnchorGenerator", exact=True):
        for i, (grid, spec) in enumerate(zip(grids, ssd_tf_ops.box_specs())):
            scope = "GridAnchorGenerator" if i == 0 else f"GridAnchorGenerator_{i}"
            with b.scope(scope, exact=True):
                layers.append(b.apply(
                    lambda g=grid, s=spec, name=None: tf.identity(ssd_tf_ops.anchor_ops(tf, g, s), name=name), [],
                    name="anchors"))
        with b.scope("Concatenate", exact=True):
            return b.apply(lambda *t, name=None: tf.concat(list(t), 0, name=name), layers, name="concat")


# ---------------------------------------------------------------------------------------------------- postprocessing
def od_api_postprocess(b: FrozenGraphBuilder, encodings: Node, class_concat: Node, anchors: Node, *,
                       logit_scale: float = 1.0, softmax: bool = False,
                       nms: ssd_tf_ops.NmsSpec = ssd_tf_ops.PUBLISHED_NMS) -> None:
    """The OD API's Postprocessor on [N, A, 4] encodings and [N, A, C+1] logits, and the four detection outputs."""
    tf = b.tf
    with b.scope("Postprocessor", exact=True):
        with b.scope("Decode", exact=True):
            boxes = b.apply(lambda e, a, name=None: tf.identity(ssd_tf_ops.decode(tf, e, a), name=name),
                            [encodings, anchors], name="boxes")
        logits = b.apply(lambda t, name=None: tf.divide(t, logit_scale, name=name), [class_concat],
                         name="scale_logits")
        scores = b.apply(tf.nn.softmax if softmax else tf.sigmoid, [logits], name="convert_scores")
        foreground = b.apply(lambda t, name=None: tf.slice(t, [0, 0, 1], [-1, -1, -1], name=name), [scores],
                             name="Slice")
        with b.scope("BatchMultiClassNonMaxSuppression", exact=True):
            with b._graph_scope():
                nmsed = ssd_tf_ops.batch_multiclass_nms(tf, boxes.g, foreground.g, nms)
    with b._graph_scope(""):
        tf.identity(nmsed[0], name="detection_boxes")
        tf.identity(nmsed[1], name="detection_scores")
        tf.add(nmsed[2], 1.0, name="detection_classes")  # label_id_offset: COCO ids
        tf.identity(nmsed[3], name="num_detections")


def od_api_resize(b: FrozenGraphBuilder, calibration: np.ndarray, size: tuple[int, int]) -> Node:
    """uint8 `image_tensor` of any size -> Preprocessor/ToFloat -> ResizeImage (TF1's legacy bilinear)."""
    tf = b.tf
    image = b.placeholder(INPUT, calibration, shape=[None, None, None, 3], dtype="uint8")
    with b.scope("Preprocessor", exact=True):
        x = b.apply(lambda t, name=None: tf.cast(t, tf.float32, name=name), [image], name="ToFloat")
        with b.scope("ResizeImage", exact=True):
            return b.apply(lambda t, name=None: tf.raw_ops.ResizeBilinear(  # no half-pixel centres
                images=t, size=list(size), align_corners=False, half_pixel_centers=False, name=name), [x],
                name="ResizeBilinear")


def build_ssd_graph(variant: StandinVariant, seed: int, calibration: np.ndarray | None = None) -> Any:
    """The frozen GraphDef (see the module docstring)."""
    shape = SHAPES[variant]
    calib = calibration if calibration is not None else calibration_images(seed)
    b = FrozenGraphBuilder(seed)
    tf = b.tf
    x = od_api_resize(b, calib, (SIZE, SIZE))
    with b.scope("Preprocessor", exact=True):
        x = b.apply(lambda t, name=None: tf.multiply(t, 2.0 / 255.0, name=name), [x], name="mul")
        x = b.apply(lambda t, name=None: tf.subtract(t, 1.0, name=name), [x], name="sub")
    maps = _feature_maps(b, x, shape)
    grids = [tuple(int(d) for d in m.v.shape[1:3]) for m in maps]
    box_concat, class_concat = _box_predictors(b, maps, [3, 6, 6, 6, 6, 6])
    anchors = _anchors(b, grids)
    squeezed = b.apply(tf.squeeze, [box_concat], name="Squeeze", axis=[2])
    od_api_postprocess(b, squeezed, class_concat, anchors)
    return b.graph_def()


@register("ssd-mobilenet-v1-tgz", version=2)
def build_ssd_tgz(dest: Path, variant: StandinVariant, seed: int) -> None:
    """ssd_mobilenet_v1_coco_2018_01_28.tar.gz: frozen_inference_graph.pb and pipeline.config."""
    with tempfile.TemporaryDirectory(prefix="edgezoo-standin-") as tmp:
        folder = Path(tmp)
        pb = write_graph_def(build_ssd_graph(variant, seed), folder / "frozen_inference_graph.pb")
        config = folder / "pipeline.config"
        config.write_text(PIPELINE_CONFIG)
        deterministic_tgz(Path(dest), {GRAPH_MEMBER: pb, CONFIG_MEMBER: config}, folders=[FOLDER])


@register("ssd-mobilenet-v1-onnx", version=2)
def build_ssd_onnx(dest: Path, variant: StandinVariant, seed: int) -> None:
    """ssd_mobilenet_v1_coco_2018_01_28.onnx as published: tf2onnx (opset 10 when it can) of the stand-in graph,
    uint8 NHWC image_tensor:0, NMS inside, the four detection outputs."""
    with tempfile.TemporaryDirectory(prefix="edgezoo-standin-") as tmp:
        pb = write_graph_def(build_ssd_graph(variant, seed), Path(tmp) / "frozen_inference_graph.pb")
        convert_graph_to_onnx(pb, Path(dest))


ONNX_OPSETS = (10, 11, 12)


def convert_graph_to_onnx(pb: Path, dest: Path) -> int:
    """tf2onnx of the frozen graph at the lowest opset that converts it; returns the opset used."""
    last: EdgezooError | None = None
    for opset in ONNX_OPSETS:
        try:
            frozen_graph_to_onnx(pb, [INPUT], list(OUTPUTS), dest, opset=opset)
            onnx_model.load(dest)  # tf2onnx leaves ops it cannot convert in place: the checker catches them
            return opset
        except EdgezooError as exc:
            last = exc
    assert last is not None
    raise last
