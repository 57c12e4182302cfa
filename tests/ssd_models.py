"""Models for the ResNet34-SSD tests: the REDUCED stand-in (built once per test process) and a tiny SSD-shaped
graph built node by node, for head discovery on graphs the stand-in builder did not write."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np


@functools.lru_cache(maxsize=None)
def reduced_standin(**variant) -> Path:
    """resnet34-ssd1200.onnx stand-in, REDUCED, seed 0 (about 1 s to build, 5 MB). No keywords: the registered
    builder's file (the published structure); keywords select standins.ssd_resnet34.build_model's test variants
    (naming="numbered", box_order="interpolated-last", crowded=True)."""
    import onnx

    from edgezoo.standins import StandinVariant, get_builder
    from edgezoo.standins.ssd_resnet34 import build_model

    suffix = "-".join(f"{k}-{v}" for k, v in sorted(variant.items()))
    dest = Path(tempfile.mkdtemp(prefix="edgezoo-ssd-r34-")) / f"resnet34-ssd1200{'-' + suffix if suffix else ''}.onnx"
    if variant:
        onnx.save(build_model(StandinVariant.REDUCED, 0, **variant), dest)
    else:
        get_builder("ssd-resnet34-onnx").build(dest, StandinVariant.REDUCED, 0)
    return dest


def tiny_ssd(num_classes: int = 3, anchors: tuple[int, ...] = (2, 3), layout: str = "interleaved",
             head_names: tuple[str, ...] | None = None, seed: int = 0):
    """x [1,3,8,8] -> conv per head (one 8x8 map, one 4x4 map) -> box/class heads reshaped and concatenated,
    then a Softmax so the concats feed a 'decoder'. Head conv outputs are named `head_names` (box, class per head)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def init(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    feats = ["x", "f1"]
    nodes.append(helper.make_node("Conv", ["x", init("w_f1", rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32))],
                                  ["f1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], name="down"))
    boxes, classes = [], []
    names = list(head_names or [f"{kind}_{k}" for k in range(len(anchors)) for kind in ("box", "cls")])
    for k, (f, a) in enumerate(zip(feats, anchors)):
        cin = 3 if f == "x" else 4
        for kind, rows, bag in (("box", 4, boxes), ("cls", num_classes, classes)):
            out = names.pop(0)
            w = rng.normal(0, 0.5, (a * rows, cin, 3, 3)).astype(np.float32)
            nodes.append(helper.make_node("Conv", [f, init(f"w_{kind}{k}", w)], [out], kernel_shape=[3, 3],
                                          pads=[1, 1, 1, 1], name=f"conv_{kind}_{k}"))
            if layout == "interleaved":
                shape = init(f"shape_{kind}{k}", np.array([1, rows, -1], dtype=np.int64))
                nodes.append(helper.make_node("Reshape", [out, shape], [f"r_{kind}{k}"], name=f"reshape_{kind}_{k}"))
            else:
                nodes.append(helper.make_node("Transpose", [out], [f"t_{kind}{k}"], perm=[0, 2, 3, 1],
                                              name=f"transpose_{kind}_{k}"))
                shape = init(f"shape_{kind}{k}", np.array([1, -1, rows], dtype=np.int64))
                nodes.append(helper.make_node("Reshape", [f"t_{kind}{k}", shape], [f"r_{kind}{k}"],
                                              name=f"reshape_{kind}_{k}"))
            bag.append(f"r_{kind}{k}")
    axis = 2 if layout == "interleaved" else 1
    nodes.append(helper.make_node("Concat", boxes, ["loc"], axis=axis, name="cat_loc"))
    nodes.append(helper.make_node("Concat", classes, ["conf"], axis=axis, name="cat_conf"))
    nodes.append(helper.make_node("Softmax", ["conf"], ["probs"], axis=1 if axis == 2 else 2, name="softmax"))
    graph = helper.make_graph(nodes, "tiny_ssd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("loc", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("probs", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def generated_meta(model_path: Path, thresholds=None):
    """The caffe_ssd meta-architecture generated for a ResNet34-SSD stand-in from its heads and the card's spec."""
    import onnx

    from edgezoo.ssd.onnx_heads import find_heads
    from edgezoo.tidl.meta_arch.generate import Thresholds, meta_arch_from_heads
    from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec
    from edgezoo.zoo import get_card

    model = onnx.load(model_path)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = 1200, 1200
    spec = DefaultBoxSpec.from_params(get_card("ssd-resnet34-1200").recipe("onnx").params)
    return meta_arch_from_heads(find_heads(model, 81), spec, ["bboxes", "labels", "scores"],
                                thresholds or Thresholds())


def tiny_decoding_ssd(num_classes: int = 5, seed: int = 0):
    """x [1,3,16,16] -> two SEPARATED heads (8x8 x 3 boxes: 4 px square, 2:1, 1:2; 4x4 x 2 boxes: 8 px and
    sqrt(8*12) px squares) -> a TF-style decoding in the graph: one [N, 4] prior constant (cx, cy, w, h),
    regressions (ty, tx, th, tw), variances 0.1/0.1/0.2/0.2, boxes (ymin, xmin, ymax, xmax), sigmoid scores,
    background column dropped, NonMaxSuppression (50 per class, IoU 0.45, score 0.3), outputs boxes / scores / labels
    gathered from its selection. Returns (model, priors)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def init(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    heads = [("x", 3, 8, [(4, 4), (4 * 2 ** 0.5, 4 / 2 ** 0.5), (4 / 2 ** 0.5, 4 * 2 ** 0.5)]),
             ("f1", 4, 4, [(8, 8), (96 ** 0.5, 96 ** 0.5)])]
    nodes.append(helper.make_node("Conv", ["x", init("w_f1", rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32))],
                                  ["f1"], kernel_shape=[3, 3], strides=[4, 4], pads=[1, 1, 1, 1]))
    locs, confs, priors = [], [], []
    for k, (feat, cin, grid, sizes) in enumerate(heads):
        a = len(sizes)
        for kind, rows, bag in (("box", 4, locs), ("cls", num_classes, confs)):
            w = rng.normal(0, 0.3, (a * rows, cin, 3, 3)).astype(np.float32)
            stride = 16 // grid if feat == "x" else 1
            nodes.append(helper.make_node("Conv", [feat, init(f"w_{kind}{k}", w)], [f"{kind}_{k}"],
                                          kernel_shape=[3, 3], strides=[stride, stride], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Transpose", [f"{kind}_{k}"], [f"t_{kind}{k}"], perm=[0, 2, 3, 1]))
            nodes.append(helper.make_node("Reshape", [f"t_{kind}{k}", init(f"s_{kind}{k}", np.array(
                [1, -1, rows], np.int64))], [f"r_{kind}{k}"]))
            bag.append(f"r_{kind}{k}")
        c = (np.arange(grid) + 0.5) / grid
        cy, cx = np.meshgrid(c, c, indexing="ij")
        p = np.zeros((grid, grid, a, 4))
        p[..., 0], p[..., 1] = cx[..., None], cy[..., None]
        p[..., 2] = np.array([s[0] for s in sizes]) / 16
        p[..., 3] = np.array([s[1] for s in sizes]) / 16
        priors.append(p.reshape(-1, 4))
    priors = np.concatenate(priors).astype(np.float32)
    n = len(priors)
    nodes.append(helper.make_node("Concat", locs, ["loc"], axis=1))
    nodes.append(helper.make_node("Concat", confs, ["conf"], axis=1))
    init("priors", priors)
    for i, name in enumerate(("ty", "tx", "th", "tw")):
        nodes.append(helper.make_node("Slice", ["loc", init(f"b{i}", np.array([i], np.int64)),
                                                init(f"e{i}", np.array([i + 1], np.int64)),
                                                init(f"a{i}", np.array([2], np.int64))], [name]))
    for i, name in enumerate(("pcx", "pcy", "pw", "ph")):
        nodes.append(helper.make_node("Slice", ["priors", init(f"pb{i}", np.array([i], np.int64)),
                                                init(f"pe{i}", np.array([i + 1], np.int64)),
                                                init(f"pa{i}", np.array([1], np.int64))], [name]))
    v1, v2, half = init("v1", np.float32(0.1)), init("v2", np.float32(0.2)), init("half", np.float32(0.5))
    for t, p, size, out in (("ty", "pcy", "ph", "cy"), ("tx", "pcx", "pw", "cx")):
        nodes += [helper.make_node("Mul", [t, v1], [f"{t}_v"]), helper.make_node("Mul", [f"{t}_v", size], [f"{t}_s"]),
                  helper.make_node("Add", [f"{t}_s", p], [out])]
    for t, size, out in (("th", "ph", "h2"), ("tw", "pw", "w2")):
        nodes += [helper.make_node("Mul", [t, v2], [f"{t}_v"]), helper.make_node("Exp", [f"{t}_v"], [f"{t}_e"]),
                  helper.make_node("Mul", [f"{t}_e", size], [f"{t}_s"]),
                  helper.make_node("Mul", [f"{t}_s", half], [out])]
    nodes += [helper.make_node("Sub", ["cy", "h2"], ["y1"]), helper.make_node("Sub", ["cx", "w2"], ["x1"]),
              helper.make_node("Add", ["cy", "h2"], ["y2"]), helper.make_node("Add", ["cx", "w2"], ["x2"]),
              helper.make_node("Concat", ["y1", "x1", "y2", "x2"], ["boxes"], axis=2),
              helper.make_node("Sigmoid", ["conf"], ["probs"]),
              helper.make_node("Slice", ["probs", init("cb", np.array([1], np.int64)),
                                         init("ce", np.array([num_classes], np.int64)),
                                         init("ca", np.array([2], np.int64))], ["fg"]),
              helper.make_node("Transpose", ["fg"], ["fg_t"], perm=[0, 2, 1]),
              helper.make_node("NonMaxSuppression", ["boxes", "fg_t", init("per_class", np.array([50], np.int64)),
                                                     init("iou", np.array([0.45], np.float32)),
                                                     init("score", np.array([0.3], np.float32))], ["selected"])]
    # the detections as exporters write them: boxes and scores gathered by the selected (class, box) pairs,
    # labels = the foreground class index + 1
    one, two = init("one", np.array(1, np.int64)), init("two", np.array(2, np.int64))
    nodes += [helper.make_node("Gather", ["selected", one], ["sel_class"], axis=1),
              helper.make_node("Gather", ["selected", two], ["sel_box"], axis=1),
              helper.make_node("Reshape", ["boxes", init("rows4", np.array([-1, 4], np.int64))], ["boxes0"]),
              helper.make_node("Gather", ["boxes0", "sel_box"], ["det_boxes"], axis=0),
              helper.make_node("Reshape", ["fg_t", init("fg_shape", np.array([num_classes - 1, n], np.int64))],
                               ["fg0"]),
              helper.make_node("Slice", ["selected", init("s1", np.array([1], np.int64)),
                                         init("s3", np.array([3], np.int64)), init("ax1", np.array([1], np.int64))],
                               ["pairs"]),
              helper.make_node("GatherND", ["fg0", "pairs"], ["det_scores"]),
              helper.make_node("Add", ["sel_class", one], ["det_labels"])]
    graph = helper.make_graph(nodes, "tiny_decoding_ssd",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info(n, t, None) for n, t in
                               (("det_boxes", TensorProto.FLOAT), ("det_scores", TensorProto.FLOAT),
                                ("det_labels", TensorProto.INT64))], inits)
    assert n == 8 * 8 * 3 + 4 * 4 * 2
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), priors
