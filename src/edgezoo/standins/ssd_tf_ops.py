"""TF ops of the SSD-MobileNet stand-in graph written after the TF OD API's code (independently of edgezoo.detection):
the multiple-grid anchor generator, the faster_rcnn box decoder and the per-class NMS with its batch loop.

The anchors here are the OD API's algorithm as TF ops, so the recipes' numpy generator is checked against an
independent implementation, not against itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

NUM_CLASSES = 90  # without background
SCORE_THRESHOLD, IOU_THRESHOLD, MAX_PER_CLASS, MAX_TOTAL = 0.3, 0.6, 100, 100


@dataclass(frozen=True)
class NmsSpec:
    """batch_non_max_suppression of a stand-in (defaults: the published SSD-MobileNet's)."""

    num_classes: int = NUM_CLASSES
    score_threshold: float = SCORE_THRESHOLD
    iou_threshold: float = IOU_THRESHOLD
    per_class: int = MAX_PER_CLASS
    total: int = MAX_TOTAL


PUBLISHED_NMS = NmsSpec()


def box_specs() -> list[list[tuple[float, float]]]:
    """create_ssd_anchors for the published config (scales from the float32 config values, as the OD API reads them)."""
    min_scale, max_scale = float(np.float32(0.2)), float(np.float32(0.95))
    ratios = [float(np.float32(r)) for r in (1.0, 2.0, 0.5, 3.0, 0.3333)]
    scales = [min_scale + (max_scale - min_scale) * i / 5 for i in range(6)] + [1.0]
    specs = []
    for layer in range(6):
        if layer == 0:
            specs.append([(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)])
        else:
            specs.append([(scales[layer], r) for r in ratios] + [(math.sqrt(scales[layer] * scales[layer + 1]), 1.0)])
    return specs


def od_meshgrid(tf: Any, x: Any, y: Any) -> tuple[Any, Any]:
    """object_detection.utils.ops.meshgrid: grids of shape shape(y) + shape(x) (x varies over the trailing dims)."""
    sx, sy = x.shape.as_list(), y.shape.as_list()
    xgrid = tf.broadcast_to(tf.reshape(x, [1] * len(sy) + sx), sy + sx)
    ygrid = tf.broadcast_to(tf.reshape(y, sy + [1] * len(sx)), sy + sx)
    return xgrid, ygrid


def anchor_ops(tf: Any, grid: tuple[int, int], spec: list[tuple[float, float]]) -> Any:
    """tile_anchors of the OD API's grid_anchor_generator, as TF ops (corner boxes, order row, column, box)."""
    scales = tf.constant([s for s, _ in spec], tf.float32)
    ratio_sqrts = tf.sqrt(tf.constant([r for _, r in spec], tf.float32))
    heights, widths = scales / ratio_sqrts, scales * ratio_sqrts
    stride_y, stride_x = 1.0 / tf.cast(grid[0], tf.float32), 1.0 / tf.cast(grid[1], tf.float32)
    return tile_anchor_ops(tf, grid, heights, widths, (stride_y, stride_x), (0.5 * stride_y, 0.5 * stride_x))


def tile_anchor_ops(tf: Any, grid: tuple[int, int], heights: Any, widths: Any, stride: tuple[Any, Any],
                    offset: tuple[Any, Any]) -> Any:
    """Boxes of the given sizes at every grid cell (row * stride + offset), corner form, order row, column, box."""
    y = tf.cast(tf.range(grid[0]), tf.float32) * stride[0] + offset[0]
    x = tf.cast(tf.range(grid[1]), tf.float32) * stride[1] + offset[1]
    x, y = od_meshgrid(tf, x, y)
    w_grid, x_grid = od_meshgrid(tf, widths, x)
    h_grid, y_grid = od_meshgrid(tf, heights, y)
    centers = tf.reshape(tf.stack([y_grid, x_grid], axis=3), [-1, 2])
    sizes = tf.reshape(tf.stack([h_grid, w_grid], axis=3), [-1, 2])
    return tf.concat([centers - 0.5 * sizes, centers + 0.5 * sizes], 1)


def decode(tf: Any, encodings: Any, anchors: Any) -> Any:
    """faster_rcnn_box_coder.decode with scales 10, 10, 5, 5 (boxes [N, A, 4] from encodings [N, A, 4])."""
    ymin, xmin, ymax, xmax = tf.unstack(anchors, axis=1)
    ha, wa = ymax - ymin, xmax - xmin
    ya, xa = ymin + ha / 2.0, xmin + wa / 2.0
    ty, tx, th, tw = tf.unstack(encodings, axis=2)
    ty, tx, th, tw = ty / 10.0, tx / 10.0, th / 5.0, tw / 5.0
    h, w = tf.exp(th) * ha, tf.exp(tw) * wa
    yc, xc = ty * ha + ya, tx * wa + xa
    return tf.stack([yc - h / 2.0, xc - w / 2.0, yc + h / 2.0, xc + w / 2.0], axis=2)


def multiclass_nms(tf: Any, boxes: Any, scores: Any, nms: NmsSpec = PUBLISHED_NMS) -> tuple[Any, Any, Any, Any]:
    """multiclass_non_max_suppression of the OD API for one image: boxes [A, 4], scores [A, C] -> `total` slots.

    Per class: keep scores > threshold (filter_greater_than), clip to the image window and drop boxes left empty
    (clip_to_window), NMS up to 100; then all classes sorted by score, the first 100 kept, zero-padded.
    """
    kept_boxes, kept_scores, kept_classes = [], [], []
    for c in range(nms.num_classes):
        with tf.name_scope(f"class_{c}"):
            class_scores = scores[:, c]
            above = tf.reshape(tf.where(tf.greater(class_scores, nms.score_threshold)), [-1])
            cand_boxes = tf.clip_by_value(tf.gather(boxes, above), 0.0, 1.0)
            cand_scores = tf.gather(class_scores, above)
            area = (cand_boxes[:, 2] - cand_boxes[:, 0]) * (cand_boxes[:, 3] - cand_boxes[:, 1])
            nonempty = tf.reshape(tf.where(tf.greater(area, 0.0)), [-1])
            cand_boxes, cand_scores = tf.gather(cand_boxes, nonempty), tf.gather(cand_scores, nonempty)
            selected = tf.image.non_max_suppression(cand_boxes, cand_scores, nms.per_class,
                                                    iou_threshold=nms.iou_threshold)
            kept_boxes.append(tf.gather(cand_boxes, selected))
            picked = tf.gather(cand_scores, selected)
            kept_scores.append(picked)
            kept_classes.append(tf.zeros_like(picked) + float(c))
    all_boxes, all_scores = tf.concat(kept_boxes, 0), tf.concat(kept_scores, 0)
    all_classes = tf.concat(kept_classes, 0)
    total = nms.total
    count = tf.minimum(tf.shape(all_scores)[0], total)
    top_scores, order = tf.nn.top_k(all_scores, k=count, sorted=True)
    # pad_or_clip_box_list; zeros concatenated rather than tf.pad: ONNX opset 10 has no dynamic Pad.
    pad = tf.zeros(tf.stack([total - count]), tf.float32)
    out_boxes = tf.concat([tf.gather(all_boxes, order), tf.zeros(tf.stack([total - count, 4]), tf.float32)], 0)
    out_scores = tf.concat([top_scores, pad], 0)
    out_classes = tf.concat([tf.gather(all_classes, order), pad], 0)
    return (tf.reshape(out_boxes, [total, 4]), tf.reshape(out_scores, [total]),
            tf.reshape(out_classes, [total]), tf.cast(count, tf.float32))


def batch_multiclass_nms(tf: Any, boxes: Any, scores: Any, nms: NmsSpec = PUBLISHED_NMS) -> tuple[Any, Any, Any, Any]:
    """The batch loop of the OD API: a TF1 while loop over images with TensorArrays, as in the published graph.

    Control flow v1 on purpose: tf2onnx turns it into an opset-10 Loop (control flow v2's TensorList ops need
    newer opsets), which is what the published ONNX holds.
    """
    from tensorflow.python.ops import control_flow_util  # the switch behind tf.compat.v1.disable_control_flow_v2

    saved = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
    try:
        return tf.map_fn(lambda args: multiclass_nms(tf, args[0], args[1], nms), (boxes, scores),
                         fn_output_signature=(tf.float32, tf.float32, tf.float32, tf.float32), name="map")
    finally:
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = saved
