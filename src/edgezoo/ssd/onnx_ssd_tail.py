"""An ONNX (opset 10) post-processing tail for SSD heads, so a model cut at its heads still runs on its own.

TIDL replaces everything after the heads named in the meta-architecture prototxt with its own detection layer; the
tail exists so the bundle's model.onnx also runs in ONNX Runtime (and can be verified there) and ends in the outputs
the prototxt's `output` lists. Semantics: heads (SEPARATED layout, Caffe prior order) -> decode CENTER_SIZE_YXHW
with the given priors and variances -> sigmoid (or softmax) -> background column dropped -> ONNX NonMaxSuppression
per class
(score > threshold, IoU > threshold suppressed, at most `per_class` AFTER NMS as the TF OD API does) -> the best
`keep` overall, zero-padded: detection_boxes [1, keep, 4] (ymin, xmin, ymax, xmax), detection_scores [1, keep],
detection_classes [1, keep] (dataset ids = column index), num_detections [1].
Only opset-10 operators (no GatherND, no dynamic Pad, no int64 Min): TIDL-era runtimes accept it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


@dataclass(frozen=True)
class TailHead:
    box: str  # [1, A*4, H, W]
    cls: str  # [1, A*C, H, W]
    anchors: int
    grid: tuple[int, int]


class _Builder:
    def __init__(self, prefix: str) -> None:
        self.prefix, self.nodes, self.inits, self.k = prefix, [], [], 0

    def name(self, base: str) -> str:
        self.k += 1
        return f"{self.prefix}/{base}_{self.k}"

    def const(self, value: np.ndarray, base: str = "const") -> str:
        from onnx import numpy_helper

        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], base: str | None = None, outputs: int = 1,
           out_names: Sequence[str] | None = None, **attrs: Any) -> Any:
        from onnx import helper

        names = list(out_names) if out_names else [self.name(base or op_type) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self.name(op_type), **attrs))
        return names[0] if outputs == 1 else names


def add_detection_tail(model: Any, heads: Sequence[TailHead], priors_cxcywh: np.ndarray, variances: Sequence[float],
                       num_classes: int, score_threshold: float, iou_threshold: float, per_class: int,
                       keep: int, prefix: str = "edgezoo_tail", softmax: bool = False) -> Any:
    """A copy of `model` whose outputs are the four detection outputs computed from `heads` (see module doc)."""
    import onnx
    from onnx import TensorProto, helper

    b = _Builder(prefix)
    locs, logits = [], []
    for h in heads:
        for tensor, rows, acc in ((h.box, 4, locs), (h.cls, num_classes, logits)):
            t = b.op("Transpose", [tensor], perm=[0, 2, 3, 1])
            acc.append(b.op("Reshape", [t, b.const(np.array([1, -1, rows], np.int64), "shape")]))
    loc = b.op("Concat", locs, axis=1)  # [1, P, 4]
    logit = b.op("Concat", logits, axis=1)  # [1, P, C]
    p = np.asarray(priors_cxcywh, np.float32).reshape(-1, 4)
    ty, tx, th, tw = b.op("Split", [loc], outputs=4, axis=2)
    pcx, pcy, pw, ph = (b.const(p[None, :, i:i + 1].copy(), n) for i, n in enumerate(("pcx", "pcy", "pw", "ph")))
    v = [b.const(np.array(x, np.float32), "variance") for x in variances]
    cy = b.op("Add", [b.op("Mul", [b.op("Mul", [ty, v[0]]), ph]), pcy])
    cx = b.op("Add", [b.op("Mul", [b.op("Mul", [tx, v[1]]), pw]), pcx])
    half = b.const(np.array(0.5, np.float32), "half")
    hh = b.op("Mul", [b.op("Mul", [b.op("Exp", [b.op("Mul", [th, v[2]])]), ph]), half])
    hw = b.op("Mul", [b.op("Mul", [b.op("Exp", [b.op("Mul", [tw, v[3]])]), pw]), half])
    boxes = b.op("Concat", [b.op("Sub", [cy, hh]), b.op("Sub", [cx, hw]), b.op("Add", [cy, hh]),
                            b.op("Add", [cx, hw])], axis=2)  # [1, P, 4]
    # SOFTMAX over the classes of each prior (opset < 13 Softmax flattens from `axis`: the last axis here).
    scores = b.op("Softmax", [logit], axis=2) if softmax else b.op("Sigmoid", [logit])
    fg = b.op("Slice", [scores, b.const(np.array([1], np.int64)), b.const(np.array([num_classes], np.int64)),
                        b.const(np.array([2], np.int64))])  # [1, P, C-1]
    fg_t = b.op("Transpose", [fg], perm=[0, 2, 1])  # [1, C-1, P]
    selected = b.op("NonMaxSuppression", [boxes, fg_t, b.const(np.array([per_class], np.int64)),
                                          b.const(np.array([iou_threshold], np.float32)),
                                          b.const(np.array([score_threshold], np.float32))])  # [K, 3]
    cls_idx = b.op("Squeeze", [b.op("Slice", [selected, b.const(np.array([1], np.int64)),
                                              b.const(np.array([2], np.int64)), b.const(np.array([1], np.int64))])],
                   axes=[1])
    box_idx = b.op("Squeeze", [b.op("Slice", [selected, b.const(np.array([2], np.int64)),
                                              b.const(np.array([3], np.int64)), b.const(np.array([1], np.int64))])],
                   axes=[1])
    flat_scores = b.op("Reshape", [fg_t, b.const(np.array([-1], np.int64), "shape")])
    priors_n = b.const(np.array(len(p), np.int64), "num_priors")
    sel_scores = b.op("Gather", [flat_scores, b.op("Add", [b.op("Mul", [cls_idx, priors_n]), box_idx])], axis=0)
    sel_boxes = b.op("Gather", [b.op("Reshape", [boxes, b.const(np.array([-1, 4], np.int64), "shape")]), box_idx],
                     axis=0)
    sel_classes = b.op("Add", [b.op("Cast", [cls_idx], to=TensorProto.FLOAT), b.const(np.array(1, np.float32))])
    # Pad with `keep` zeros so TopK(keep) always has enough values (no int64 Min / dynamic Pad in opset 10).
    pad_scores = b.op("Concat", [sel_scores, b.const(np.zeros(keep, np.float32))], axis=0)
    pad_boxes = b.op("Concat", [sel_boxes, b.const(np.zeros((keep, 4), np.float32))], axis=0)
    pad_classes = b.op("Concat", [sel_classes, b.const(np.zeros(keep, np.float32))], axis=0)
    top_scores, top_idx = b.op("TopK", [pad_scores, b.const(np.array([keep], np.int64), "k")], outputs=2, axis=0)
    axes0 = dict(axes=[0])
    b.op("Unsqueeze", [top_scores], out_names=[OUTPUTS[1]], **axes0)
    b.op("Unsqueeze", [b.op("Gather", [pad_boxes, top_idx], axis=0)], out_names=[OUTPUTS[0]], **axes0)
    b.op("Unsqueeze", [b.op("Gather", [pad_classes, top_idx], axis=0)], out_names=[OUTPUTS[2]], **axes0)
    valid = b.op("Cast", [b.op("Greater", [top_scores, b.const(np.array(0.0, np.float32))])], to=TensorProto.FLOAT)
    b.op("ReduceSum", [valid], out_names=[OUTPUTS[3]], axes=[0], keepdims=1)

    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.node.extend(b.nodes)
    out.graph.initializer.extend(b.inits)
    del out.graph.output[:]
    shapes = {OUTPUTS[0]: [1, keep, 4], OUTPUTS[1]: [1, keep], OUTPUTS[2]: [1, keep], OUTPUTS[3]: [1]}
    out.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes[n]) for n in OUTPUTS)
    return out
