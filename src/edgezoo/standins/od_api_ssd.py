"""Stand-ins for users' own TF Object Detection API SSDs: small OD-API-structured frozen graphs + pipeline.config that
vary what users vary -- num_classes, input size (square or not), reduce_boxes_in_lowest_layer, SIGMOID or SOFTMAX
scores with a logit_scale, ssd_anchor_generator or multiscale_anchor_generator (FPN, weight-shared box predictor).

Interface and structure of an OD API export: uint8 `image_tensor` [N, H, W, 3] of any size -> Preprocessor (resize,
normalise) -> FeatureExtractor -> box predictor heads -> `concat` / `concat_1` -> anchors computed by TF ops ->
Postprocessor (decode 10/10/5/5, scale_logits, score converter, background sliced off, clip, per-class NMS) -> the four
detection outputs. Head names follow the box predictor, as in real exports: convolutional
`BoxPredictor_i/{BoxEncodingPredictor,ClassPredictor}` (1x1 convs) or weight-shared
`WeightSharedConvolutionalBoxPredictor[_i]/{BoxPredictor,ClassPredictor}` (3x3, one kernel for every level); the
recipes find heads by structure, so both must work.

Weights are calibrated as the SSD-MobileNet stand-in's (standins/tf_build.py): batch norms take measured statistics
and the class heads put a few anchors per image above the threshold, depending on the content. Anchors are TF ops
written after the OD API (standins/ssd_tf_ops.py), independent of edgezoo.detection.anchors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.datasets import images
from edgezoo.preprocessing.card import preprocess
from edgezoo.standins import ssd_tf_ops
from edgezoo.standins.ssd_mobilenet import (class_bias, head_conv, od_api_postprocess, od_api_resize, slim_conv,
                                            standardised_weights)
from edgezoo.standins.tf_build import FrozenGraphBuilder, Node, write_graph_def
from edgezoo.zoo.schema import Preprocess

RESNET_MEAN = (123.68, 116.779, 103.939)  # FPN variants normalise as the OD API's ResNet extractors do


@dataclass(frozen=True)
class OdApiSsd:
    """One stand-in detector: what its pipeline.config says, and so what its graph computes."""

    name: str
    num_classes: int = 3
    size: tuple[int, int] = (128, 128)  # (height, width)
    multiscale: bool = False  # multiscale_anchor_generator + FPN + weight-shared predictor
    num_layers: int = 4  # feature maps (multiscale: levels 3 .. 3 + num_layers - 1)
    reduce_boxes_in_lowest_layer: bool = True
    score_converter: str = "SIGMOID"
    logit_scale: float = 1.0
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    score_threshold: float = 0.3
    iou_threshold: float = 0.6
    hits: float = 10.0  # anchors per image above the threshold before NMS (calibration target)

    @property
    def nms(self) -> ssd_tf_ops.NmsSpec:
        return ssd_tf_ops.NmsSpec(self.num_classes, self.score_threshold, self.iou_threshold, 100, 100)

    def box_specs(self) -> list[list[tuple[float, float]]]:
        """ssd_anchor_generator's (scale, ratio) boxes per layer (min_scale 0.2, max_scale 0.95)."""
        n = self.num_layers
        lo, hi = float(np.float32(0.2)), float(np.float32(0.95))
        scales = [lo + (hi - lo) * i / (n - 1) for i in range(n)] + [1.0]
        ratios = [float(np.float32(r)) for r in self.aspect_ratios]
        specs = []
        for layer in range(n):
            if layer == 0 and self.reduce_boxes_in_lowest_layer:
                specs.append([(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)])
            else:
                specs.append([(scales[layer], r) for r in ratios]
                             + [(math.sqrt(scales[layer] * scales[layer + 1]), 1.0)])
        return specs

    @property
    def extractor(self) -> str:
        return "ssd_resnet_fpn_standin" if self.multiscale else "ssd_standin"

    def boxes_per_location(self) -> list[int]:
        if self.multiscale:
            return [len(self.aspect_ratios) * 2] * self.num_layers  # scales_per_octave 2
        return [len(s) for s in self.box_specs()]

    def pipeline_config(self) -> str:
        if self.multiscale:
            ratios = "".join(f"        aspect_ratios: {r}\n" for r in self.aspect_ratios)
            anchors = (f"      multiscale_anchor_generator {{\n        min_level: 3\n        max_level: "
                       f"{2 + self.num_layers}\n        anchor_scale: 4.0\n{ratios}        scales_per_octave: 2\n"
                       "      }\n")
            predictor = "weight_shared_convolutional_box_predictor { depth: 32 num_layers_before_predictor: 0 }"
        else:
            ratios = "".join(f"        aspect_ratios: {r}\n" for r in self.aspect_ratios)
            reduce = "" if self.reduce_boxes_in_lowest_layer else "        reduce_boxes_in_lowest_layer: false\n"
            anchors = (f"      ssd_anchor_generator {{\n        num_layers: {self.num_layers}\n        min_scale: 0.2\n"
                       f"        max_scale: 0.95\n{ratios}{reduce}      }}\n")
            predictor = "convolutional_box_predictor { kernel_size: 1 box_code_size: 4 }"
        logit = f"\n      logit_scale: {self.logit_scale}" if self.logit_scale != 1.0 else ""
        return (f"model {{\n  ssd {{\n    num_classes: {self.num_classes}\n    image_resizer {{\n"
                f"      fixed_shape_resizer {{ height: {self.size[0]} width: {self.size[1]} }}\n    }}\n"
                f"    feature_extractor {{ type: \"{self.extractor}\" }}\n"
                "    box_coder { faster_rcnn_box_coder { y_scale: 10.0 x_scale: 10.0 height_scale: 5.0 "
                "width_scale: 5.0 } }\n"
                f"    box_predictor {{ {predictor} }}\n    anchor_generator {{\n{anchors}    }}\n"
                "    post_processing {\n      batch_non_max_suppression {\n"
                f"        score_threshold: {self.score_threshold}\n        iou_threshold: {self.iou_threshold}\n"
                "        max_detections_per_class: 100\n        max_total_detections: 100\n      }\n"
                f"      score_converter: {self.score_converter}{logit}\n    }}\n  }}\n}}\n"
                "train_config { batch_size: 8 }\n")


VARIANTS = {v.name: v for v in (
    OdApiSsd("classes3", num_classes=3),
    OdApiSsd("classes20", num_classes=20, hits=16.0),
    OdApiSsd("input320", num_classes=5, size=(320, 320), num_layers=5),
    OdApiSsd("nonsquare", num_classes=4, size=(160, 224)),
    OdApiSsd("no_reduce", num_classes=4, reduce_boxes_in_lowest_layer=False),
    OdApiSsd("softmax", num_classes=6, score_converter="SOFTMAX", logit_scale=2.0),
    OdApiSsd("fpn", num_classes=5, size=(256, 256), multiscale=True, num_layers=3, aspect_ratios=(1.0, 2.0, 0.5)),
)}


def calibration_images(model: OdApiSsd, seed: int) -> np.ndarray:
    """uint8 [B, H, W, 3]: the verification photographs and seeded images, resized to the model's input."""
    spec = Preprocess(resize=model.size, resize_mode="direct", interpolation="linear", crop=None, color="RGB",
                      mean=(0.0,) * 3, scale=(1.0,) * 3, layout="NHWC", dtype="uint8")
    pictures = images.verification_images() + images.random_images(4, seed=seed + 404)
    return np.concatenate([preprocess(img, spec, dtype="uint8") for _, img in pictures])


def _backbone(b: FrozenGraphBuilder, x: Node, model: OdApiSsd) -> list[Node]:
    """Feature maps at strides 8, 16, 32, ... (SSD extra layers, or an FPN's top-down pyramid)."""
    tf = b.tf
    base = "FeatureExtractor/Backbone/"
    x = slim_conv(b, base + "Conv2d_0", lambda: b.conv2d(x, 16, 3, 2, kernel_name="weights"))
    x = slim_conv(b, base + "Conv2d_1", lambda: b.conv2d(x, 24, 3, 2, kernel_name="weights"))
    x = slim_conv(b, base + "Conv2d_2", lambda: b.conv2d(x, 32, 3, 2, kernel_name="weights"))
    maps = [x]
    for k in range(1, model.num_layers):
        depth = 32 + 16 * k if model.multiscale else 32
        x = slim_conv(b, f"{base}Conv2d_{k + 2}_1x1", lambda x=x: b.conv2d(x, 16, 1, 1, kernel_name="weights"))
        x = slim_conv(b, f"{base}Conv2d_{k + 2}_3x3_s2",
                      lambda x=x, d=depth: b.conv2d(x, d, 3, 2, kernel_name="weights"))
        maps.append(x)
    if not model.multiscale:
        return maps
    fpn = "FeatureExtractor/FeatureMaps/top_down/"
    laterals = [slim_conv(b, f"{fpn}projection_{i + 1}", lambda m=m: b.conv2d(m, 32, 1, 1, kernel_name="weights"))
                for i, m in enumerate(maps)]
    top = laterals[-1]
    outs = [top]
    for i in range(len(laterals) - 2, -1, -1):
        up = b.apply(lambda t, name=None: tf.raw_ops.ResizeNearestNeighbor(
            images=t, size=laterals[i].v.shape[1:3], name=name), [top], name=f"{fpn}nearest_neighbor_upsampling_{i}")
        top = b.apply(tf.add, [laterals[i], up], name=f"{fpn}add_{i}")
        outs.insert(0, slim_conv(b, f"{fpn}smoothing_{i + 1}", lambda t=top: b.conv2d(t, 32, 3, 1,
                                                                                     kernel_name="weights")))
    return outs


def _class_weights(b: FrozenGraphBuilder, model: OdApiSsd, feats: np.ndarray, boxes: int) -> tuple[np.ndarray, ...]:
    """Class head weights [I, A*(C+1)] and bias, calibrated on `feats`; SOFTMAX: a constant background logit 0, so a
    class scores about sigmoid(its logit) as with SIGMOID; logits scaled by logit_scale (the graph divides by it)."""
    cols = model.num_classes + 1
    w, bias = standardised_weights(b, feats, boxes * cols, spread=1.2)
    if model.score_converter == "SOFTMAX":
        w.reshape(w.shape[0], boxes, cols)[:, :, 0] = 0.0
        bias.reshape(boxes, cols)[:, 0] = 0.0
    raw = feats.reshape(-1, feats.shape[-1]).astype(np.float64) @ w + bias
    bias = bias + class_bias(b, raw.reshape(feats.shape[0], -1), boxes, model.hits, model.num_classes,
                             model.score_threshold)
    if model.score_converter == "SOFTMAX":
        bias.reshape(boxes, cols)[:, 0] = 0.0
    return (w * model.logit_scale).astype(np.float32), (bias * model.logit_scale).astype(np.float32)


def _conv_heads(b: FrozenGraphBuilder, maps: list[Node], model: OdApiSsd) -> tuple[list[Node], list[Node]]:
    boxes_out, classes_out = [], []
    for i, (fmap, boxes) in enumerate(zip(maps, model.boxes_per_location())):
        with b.scope(f"BoxPredictor_{i}", exact=True):
            with b.scope("BoxEncodingPredictor", exact=True):
                wb, bb = standardised_weights(b, fmap.v, boxes * 4, spread=0.8)
                boxes_out.append(head_conv(b, fmap, wb.astype(np.float32), bb.astype(np.float32)))
            with b.scope("ClassPredictor", exact=True):
                # Spread the hits over the layers as a trained SSD does (most on the fine maps: the coarse maps'
                # boxes cover the image, where clipping before NMS makes the original differ from TFLite/TIDL).
                share = 4.0 ** -i / sum(4.0 ** -k for k in range(len(maps)))
                layer_model = _with_hits(model, model.hits * share)
                classes_out.append(head_conv(b, fmap, *_class_weights(b, layer_model, fmap.v, boxes)))
    return boxes_out, classes_out


def _with_hits(model: OdApiSsd, hits: float) -> OdApiSsd:
    from dataclasses import replace

    return replace(model, hits=max(hits, 0.25))


def _shared_heads(b: FrozenGraphBuilder, maps: list[Node], model: OdApiSsd) -> tuple[list[Node], list[Node]]:
    """WeightSharedConvolutionalBoxPredictor: one 3x3 kernel per kind, applied to every level."""
    tf = b.tf
    boxes = model.boxes_per_location()[0]
    feats = np.concatenate([m.v.reshape(m.v.shape[0], -1, m.channels) for m in maps], axis=1)
    rng = b.rng

    def kernel3(w: np.ndarray) -> np.ndarray:
        k = rng.standard_normal((3, 3, *w.shape)) * 0.05 * np.abs(w).mean()
        k[1, 1] = w
        return k.astype(np.float32)

    wb, bb = standardised_weights(b, feats, boxes * 4, spread=0.4)
    wc, bc = _class_weights(b, model, feats[:, :, None, :], boxes)
    shared = {}
    for kind, (w, bias) in (("BoxPredictor", (wb, bb)), ("ClassPredictor", (wc, bc))):
        with b.scope(f"WeightSharedConvolutionalBoxPredictor/{kind}", exact=True):
            shared[kind] = (b.weight("weights", kernel3(w)), b.weight("biases", bias.astype(np.float32)))
    outs: dict[str, list[Node]] = {"BoxPredictor": [], "ClassPredictor": []}
    for i, fmap in enumerate(maps):
        scope = "WeightSharedConvolutionalBoxPredictor" + (f"_{i}" if i else "")
        for kind, (kernel, bias) in shared.items():
            with b.scope(f"{scope}/{kind}", exact=True):
                y = b.apply(tf.nn.conv2d, [fmap], [kernel], name="Conv2D", strides=[1, 1, 1, 1], padding="SAME")
                outs[kind].append(b.apply(tf.nn.bias_add, [y], [bias], name="BiasAdd"))
    return outs["BoxPredictor"], outs["ClassPredictor"]


def _concat_heads(b: FrozenGraphBuilder, heads: list[Node], width: int, keep_dim: bool, scope: str) -> list[Node]:
    tf = b.tf
    parts = []
    for k, head in enumerate(heads):
        h, w, c = head.v.shape[1:]
        shape = [-1, h * w * c // width, 1, width] if keep_dim else [-1, h * w * c // width, width]
        parts.append(b.apply(tf.reshape, [head], [np.array(shape, np.int32)], name=f"{scope}/Reshape_{k}"))
    return parts


def _anchor_layers(b: FrozenGraphBuilder, model: OdApiSsd, grids: list[tuple[int, int]]) -> list[Node]:
    tf = b.tf
    im_h, im_w = model.size
    layers = []
    for i, grid in enumerate(grids):
        if model.multiscale:
            level = 3 + i
            stride = 2 ** level
            scales = [2 ** (k / 2) for k in range(2)]
            pairs = [(s, r) for r in model.aspect_ratios for s in scales]  # ratio-major (ops.meshgrid)
            base = float(stride * 4.0)
            offset = (stride / 2.0 if im_h % stride == 0 else 0.0, stride / 2.0 if im_w % stride == 0 else 0.0)

            def fn(p=pairs, g=grid, st=stride, bs=base, off=offset, name=None):
                s = tf.constant([x for x, _ in p], tf.float32)
                r = tf.sqrt(tf.constant([y for _, y in p], tf.float32))
                box = ssd_tf_ops.tile_anchor_ops(tf, g, s / r * bs, s * r * bs, (float(st), float(st)), off)
                norm = tf.constant([1.0, 1.0, 1.0, 1.0]) / tf.constant([im_h, im_w, im_h, im_w], tf.float32)
                return tf.multiply(box, norm, name=name)
        else:
            spec = model.box_specs()[i]

            def fn(s=spec, g=grid, name=None):
                hw = tf.constant([im_h, im_w], tf.float32)
                base = tf.reduce_min(hw) / hw  # min(H, W) / H, min(H, W) / W
                scales = tf.constant([x for x, _ in s], tf.float32)
                r = tf.sqrt(tf.constant([y for _, y in s], tf.float32))
                sy, sx = 1.0 / tf.cast(g[0], tf.float32), 1.0 / tf.cast(g[1], tf.float32)
                box = ssd_tf_ops.tile_anchor_ops(tf, g, scales / r * base[0], scales * r * base[1], (sy, sx),
                                                 (0.5 * sy, 0.5 * sx))
                return tf.identity(box, name=name)
        scope = "GridAnchorGenerator" if i == 0 else f"GridAnchorGenerator_{i}"
        with b.scope(scope, exact=True):
            layers.append(b.apply(fn, [], name="anchors"))
    return layers


def build_graph(model: OdApiSsd, seed: int = 0) -> Any:
    """The frozen GraphDef of one stand-in detector (see the module docstring)."""
    b = FrozenGraphBuilder(seed)
    tf = b.tf
    x = od_api_resize(b, calibration_images(model, seed), model.size)
    with b.scope("Preprocessor", exact=True):
        if model.multiscale:
            x = b.apply(lambda t, name=None: tf.subtract(t, np.array(RESNET_MEAN, np.float32), name=name), [x],
                        name="sub")
        else:
            x = b.apply(lambda t, name=None: tf.multiply(t, 2.0 / 255.0, name=name), [x], name="mul")
            x = b.apply(lambda t, name=None: tf.subtract(t, 1.0, name=name), [x], name="sub")
    maps = _backbone(b, x, model)
    box_heads, class_heads = (_shared_heads if model.multiscale else _conv_heads)(b, maps, model)
    keep = not model.multiscale  # the convolutional predictor's [N, A, 1, 4], the weight-shared one's [N, A, 4]
    box_parts = _concat_heads(b, box_heads, 4, keep, "BoxPredictor/box_reshape")
    class_parts = _concat_heads(b, class_heads, model.num_classes + 1, False, "BoxPredictor/class_reshape")

    def concat(*parts: Any, name: str | None = None) -> Any:
        return tf.concat(list(parts), axis=1, name=name)

    box_concat = b.apply(concat, box_parts, name="concat")
    class_concat = b.apply(concat, class_parts, name="concat_1")
    grids = [tuple(int(d) for d in m.v.shape[1:3]) for m in maps]
    scope = "MultiscaleGridAnchorGenerator" if model.multiscale else "MultipleGridAnchorGenerator"
    with b.scope(scope, exact=True):
        layers = _anchor_layers(b, model, grids)
        with b.scope("Concatenate", exact=True):
            anchors = b.apply(lambda *t, name=None: tf.concat(list(t), 0, name=name), layers, name="concat")
    encodings = box_concat if model.multiscale else b.apply(tf.squeeze, [box_concat], name="Squeeze", axis=[2])
    od_api_postprocess(b, encodings, class_concat, anchors, logit_scale=model.logit_scale,
                       softmax=model.score_converter == "SOFTMAX", nms=model.nms)
    return b.graph_def()


def write_export(model: OdApiSsd, folder: Path, seed: int = 0) -> Path:
    """An OD API export folder: frozen_inference_graph.pb + pipeline.config (returns the folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_graph_def(build_graph(model, seed), folder / "frozen_inference_graph.pb")
    (folder / "pipeline.config").write_text(model.pipeline_config())
    return folder
