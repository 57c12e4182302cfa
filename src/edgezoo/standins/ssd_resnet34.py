"""Stand-in for resnet34-ssd1200.onnx (the MLPerf ResNet34-SSD1200 PyTorch export).

Shaped like the published file: opset 10, input `image` float32 fixed to [1, 3, 1200, 1200]; a ResNet34 backbone
(conv1, layer1-3 with layer3 at stride 1) giving 150x150, then five extra blocks giving 75, 38, 19, 9, 7; on each of
the six maps a 3x3 stride-3 pad-1 loc conv (boxes x 4) and conf conv (boxes x 81), each reshaped PyTorch-style to
[N, 4, -1] / [N, 81, -1] with the batch size taken from Shape of the FEATURE MAP (Shape -> Gather -> Unsqueeze ->
Concat -> Reshape: plain shape inference cannot resolve the reshaped dims) and concatenated into raw loc [1, 4,
15130] and logits [1, 81, 15130] (coordinate-major: channel = coord * boxes + box). Then the in-graph
post-processing: MLPerf's default boxes as two Constant nodes ([1, 15130, 2] xy and wh, clamped), variances 0.1/0.2,
softmax over 81 classes, NonMaxSuppression in the default domain (IoU 0.5, score > 0.05, 200 per class), top 200
overall, labels + 1; outputs `bboxes` [1, n, 4] (x1, y1, x2, y2 normalised), `labels` int64 [1, n] (1..80), `scores`
[1, n]. Every node's name equals its output tensor's name (`Conv_338`), as torch.onnx wrote them.

Variants for tests (build_model's keywords; the registered builder makes the published form):
- naming="numbered": the older PyTorch naming (node `Conv_12`, tensors by number `543`) and symbolic spatial dims;
- box_order="interpolated-last": per location the boxes (and the prior constants) in another order, the
  sqrt(s_k s_k+1) box last (as TF orders it): TIDL's Caffe order then needs the head channels permuted;
- box_order="two-scales": the first head's 2:1 / 1:2 boxes are ratios of its sqrt(s_k s_k+1) square, so that head
  has boxes of two min sizes and must be split into two heads;
- crowded=True: a few classes get hundreds of candidates above 0.05 per picture, so the per-class limit (ONNX NMS:
  200 AFTER suppression; Caffe: top_k BEFORE it) matters.

Weights are seeded He-normal with batch-norm statistics that keep activations O(1). The head convolutions are then
calibrated on one picture that is not in the verification set (the left view of scikit-image's stereo motorcycle):
loc outputs get unit spread, class logits a spread and a background bias chosen so that real photographs give tens of
detections above 0.05 and a few above 0.3, varying with content. Calibration factors are rounded so the file is the
same on every machine.

REDUCED keeps the input size, the six grids, the 15130 priors and every op, with narrow layers and one residual block
per stage (about 1 GMAC instead of about 215): recipes run on it with the card's own default-box spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.preprocessing.card import preprocess
from edgezoo.standins import StandinVariant, register
from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, mlperf_default_boxes
from edgezoo.zoo import get_card

INPUT = "image"
OUTPUTS = ("bboxes", "labels", "scores")
OPSET = 10
NUM_CLASSES = 81
SPEC_PARAMS = {  # the card's default-box spec (zoo/cards/ssd-resnet34-1200.yaml, recipe params)
    "input_size": [1200, 1200], "steps": [24, 48, 92, 171, 400, 400], "scales": [84, 180, 396, 612, 828, 1044, 1260],
    "aspect_ratios": [[2], [2, 3], [2, 3], [2, 3], [2], [2]], "variances": [0.1, 0.1, 0.2, 0.2]}
SCORE_THRESHOLD, IOU_THRESHOLD, PER_CLASS, TOP = 0.05, 0.5, 200, 200


@dataclass(frozen=True)
class Shape:
    base: int  # conv1 / layer1 channels (64 published)
    blocks: tuple[int, int, int]  # BasicBlocks in layer1..3 ((3, 4, 6) published)
    extra_out: tuple[int, ...]  # channels of the six feature maps
    extra_mid: tuple[int, ...]  # 1x1 bottleneck channels of the five extra blocks


SHAPES = {
    StandinVariant.FULL: Shape(64, (3, 4, 6), (256, 512, 512, 256, 256, 256), (256, 256, 128, 128, 128)),
    StandinVariant.REDUCED: Shape(8, (1, 1, 1), (32, 64, 64, 32, 32, 32), (32, 32, 16, 16, 16)),
}
# Calibration targets: spread of loc outputs and class logits, and expected (prior, class) pairs above 0.05.
LOC_STD, LOGIT_STD, CANDIDATES_TARGET = 0.6, 1.6, 150


NAMINGS = ("pytorch", "numbered")  # node name == output name (the published file) | tensors by number
BOX_ORDERS = ("mlperf", "interpolated-last", "two-scales")
CROWDED_CLASSES, CROWDED_TARGET = (1, 3, 7), 1500  # classes given about this many candidates above 0.05


class _Graph:
    """Nodes named like a PyTorch export: `<Op>_<node index>`; output tensors named like their node (`pytorch`, the
    published file) or by a running number (`numbered`, older exports)."""

    def __init__(self, seed: int, naming: str = "pytorch") -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.next_tensor = 300
        self.naming = naming
        self.rng = np.random.default_rng(seed)

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, names: list[str] | None = None,
           **attrs: Any) -> list[str]:
        from onnx import helper

        node_name = f"{op_type}_{len(self.nodes)}"
        outs = names or []
        while len(outs) < outputs:
            if self.naming == "pytorch":
                outs.append(node_name if not outs else f"{node_name}_{len(outs)}")
            else:
                outs.append(str(self.next_tensor))
                self.next_tensor += 1
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=node_name, **attrs))
        return outs

    def const(self, value: np.ndarray) -> str:
        from onnx import numpy_helper

        return self.op("Constant", [], value=numpy_helper.from_array(np.asarray(value)))[0]

    def param(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def conv(self, x: str, name: str, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0,
             bias: bool = False) -> str:
        w = self.rng.normal(0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k))
        inputs = [x, self.param(f"{name}.weight", w)]
        if bias:
            inputs.append(self.param(f"{name}.bias", np.zeros(cout)))
        return self.op("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
                       dilations=[1, 1], group=1)[0]

    def bn(self, x: str, name: str, c: int, gamma: float = 1.0) -> str:
        # Running statistics that are not the identity, with the scale keeping unit variance.
        var = self.rng.uniform(0.5, 1.5, c)
        mean = self.rng.normal(0, 0.1, c)
        inputs = [x, self.param(f"{name}.weight", gamma * np.ones(c)),
                  self.param(f"{name}.bias", self.rng.normal(0, 0.05, c)),
                  self.param(f"{name}.running_mean", mean), self.param(f"{name}.running_var", var)]
        return self.op("BatchNormalization", inputs, epsilon=1e-5, momentum=0.9)[0]

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])[0]


def _basic_block(g: _Graph, x: str, name: str, cin: int, cout: int, stride: int) -> str:
    y = g.relu(g.bn(g.conv(x, f"{name}.conv1", cin, cout, 3, stride, 1), f"{name}.bn1", cout))
    y = g.bn(g.conv(y, f"{name}.conv2", cout, cout, 3, 1, 1), f"{name}.bn2", cout, gamma=0.5)
    if stride != 1 or cin != cout:
        x = g.bn(g.conv(x, f"{name}.downsample.0", cin, cout, 1, stride), f"{name}.downsample.1", cout)
    return g.relu(g.op("Add", [y, x])[0])


def _feature_maps(g: _Graph, shape: Shape) -> list[str]:
    b = shape.base
    x = g.relu(g.bn(g.conv(INPUT, "model.layer1.0", 3, b, 7, 2, 3), "model.layer1.1", b))
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])[0]
    cin = b
    for stage, (blocks, cout, stride) in enumerate(zip(shape.blocks, (b, 2 * b, 4 * b), (1, 2, 1))):
        for i in range(blocks):
            x = _basic_block(g, x, f"model.layer1.{stage + 4}.{i}", cin, cout, stride if i == 0 else 1)
            cin = cout
    maps = [x]
    # Extra blocks: 1x1 conv, ReLU, 3x3 conv (stride 2 pad 1 three times, then stride 2 pad 0, stride 1 pad 0), ReLU.
    for k, (mid, cout) in enumerate(zip(shape.extra_mid, shape.extra_out[1:])):
        stride, pad = ((2, 1), (2, 1), (2, 1), (2, 0), (1, 0))[k]
        y = g.relu(g.conv(maps[-1], f"additional_blocks.{k}.0", cin, mid, 1, bias=True))
        maps.append(g.relu(g.conv(y, f"additional_blocks.{k}.2", mid, cout, 3, stride, pad, bias=True)))
        cin = cout
    return maps


def _view(g: _Graph, feature_map: str, x: str, rows: int) -> str:
    """x.view(feature_map.size(0), rows, -1) as torch.onnx exports it at opset 10 (MLPerf's bbox_view takes the
    batch size from the feature map, not from the head output)."""
    n = g.op("Gather", [g.op("Shape", [feature_map])[0], g.const(np.array(0, dtype=np.int64))], axis=0)[0]
    n = g.op("Unsqueeze", [n], axes=[0])[0]
    target = g.op("Concat", [n, g.const(np.array([rows], dtype=np.int64)),
                             g.const(np.array([-1], dtype=np.int64))], axis=0)[0]
    return g.op("Reshape", [x, target])[0]


def _heads(g: _Graph, maps: list[str], shape: Shape, boxes: list[int]) -> tuple[str, str, list[str], list[str]]:
    locs, confs, loc_heads, conf_heads = [], [], [], []
    for k, (x, cin, a) in enumerate(zip(maps, shape.extra_out, boxes)):
        loc = g.conv(x, f"loc.{k}", cin, a * 4, 3, 3, 1, bias=True)
        locs.append(_view(g, x, loc, 4))
        conf = g.conv(x, f"conf.{k}", cin, a * NUM_CLASSES, 3, 3, 1, bias=True)
        confs.append(_view(g, x, conf, NUM_CLASSES))
        loc_heads.append(loc)
        conf_heads.append(conf)
    loc_all = g.op("Concat", locs, axis=2)[0]
    conf_all = g.op("Concat", confs, axis=2)[0]
    return loc_all, conf_all, loc_heads, conf_heads


def _postprocess(g: _Graph, loc: str, conf: str, dboxes: np.ndarray) -> None:
    """MLPerf decode + softmax + per-class NMS + top 200, opset 10 ops only."""
    n = len(dboxes)
    i64 = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    f32 = lambda v: np.array(v, dtype=np.float32)  # noqa: E731
    loc_t = g.op("Transpose", [loc], perm=[0, 2, 1])[0]  # [1, N, 4]
    axes2 = g.const(i64([2]))
    xy = g.op("Slice", [loc_t, g.const(i64([0])), g.const(i64([2])), axes2])[0]
    wh = g.op("Slice", [loc_t, g.const(i64([2])), g.const(i64([4])), axes2])[0]
    d_xy = g.const(dboxes[None, :, :2].astype(np.float32))  # Constant nodes, as constant folding left them
    d_wh = g.const(dboxes[None, :, 2:].astype(np.float32))
    xy = g.op("Add", [g.op("Mul", [g.op("Mul", [xy, g.const(f32(0.1))])[0], d_wh])[0], d_xy])[0]
    wh = g.op("Mul", [g.op("Exp", [g.op("Mul", [wh, g.const(f32(0.2))])[0]])[0], d_wh])[0]
    half = g.op("Mul", [wh, g.const(f32(0.5))])[0]
    boxes = g.op("Concat", [g.op("Sub", [xy, half])[0], g.op("Add", [xy, half])[0]], axis=2)[0]  # [1, N, 4] xyxy
    probs = g.op("Softmax", [g.op("Transpose", [conf], perm=[0, 2, 1])[0]], axis=2)[0]  # [1, N, 81]
    probs = g.op("Transpose", [probs], perm=[0, 2, 1])[0]  # [1, 81, N]
    scores = g.op("Slice", [probs, g.const(i64([1])), g.const(i64([NUM_CLASSES])), g.const(i64([1]))])[0]
    selected = g.op("NonMaxSuppression", [boxes, scores, g.const(i64([PER_CLASS])), g.const(f32([IOU_THRESHOLD])),
                                          g.const(f32([SCORE_THRESHOLD]))])[0]  # [K, 3] (batch, class, box)
    cls = g.op("Gather", [selected, g.const(i64(1))], axis=1)[0]
    box = g.op("Gather", [selected, g.const(i64(2))], axis=1)[0]
    flat = g.op("Add", [g.op("Mul", [cls, g.const(i64(n))])[0], box])[0]
    sel_scores = g.op("Gather", [g.op("Reshape", [scores, g.const(i64([-1]))])[0], flat], axis=0)[0]
    sel_boxes = g.op("Gather", [g.op("Reshape", [boxes, g.const(i64([-1, 4]))])[0], box], axis=0)[0]
    count = g.op("Unsqueeze", [g.op("Gather", [g.op("Shape", [selected])[0], g.const(i64(0))], axis=0)[0]], axes=[0])[0]
    count = g.op("Cast", [count], to=1)[0]
    k = g.op("Cast", [g.op("Min", [count, g.const(f32([TOP]))])[0]], to=7)[0]
    top_scores, top_idx = g.op("TopK", [sel_scores, k], outputs=2, axis=0)
    g.op("Unsqueeze", [g.op("Gather", [sel_boxes, top_idx], axis=0)[0]], axes=[0], names=["bboxes"])
    labels = g.op("Add", [g.op("Gather", [cls, top_idx], axis=0)[0], g.const(i64(1))])[0]
    g.op("Unsqueeze", [labels], axes=[0], names=["labels"])
    g.op("Unsqueeze", [top_scores], axes=[0], names=["scores"])


def _make_model(g: _Graph) -> Any:
    from onnx import TensorProto, helper

    dims: list[Any] = [1, 3, 1200, 1200] if g.naming == "pytorch" else [1, 3, "height", "width"]
    graph = helper.make_graph(
        g.nodes, "torch-jit-export",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("bboxes", TensorProto.FLOAT, [1, "n", 4]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, [1, "n"]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "n"])],
        g.inits)
    model = helper.make_model(graph, producer_name="pytorch", producer_version="1.1",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 6
    return model


def _calibration_input() -> np.ndarray:
    """One picture outside the verification set, preprocessed as the card says (direct resize to 1200)."""
    from skimage import data

    image = np.asarray(data.stereo_motorcycle()[0])[..., :3]
    return preprocess(image, get_card("ssd-resnet34-1200").preprocess)


def _round(x: float) -> float:
    return float(f"{x:.3g}")  # machine-independent weights despite float noise in the measurement


def _calibrate(model: Any, g: _Graph, loc_heads: list[str], conf_heads: list[str], crowded: bool = False) -> None:
    """Rescale head weights so loc outputs and class logits have the target spread, and set the background bias."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in loc_heads + conf_heads:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    values = dict(zip(loc_heads + conf_heads, sess.run(loc_heads + conf_heads, {INPUT: _calibration_input()})))
    inits = {i.name: i for i in model.graph.initializer}

    def rescale(prefix: str, factor: float, bias: np.ndarray | None = None) -> None:
        for suffix in ("weight", "bias"):
            init = inits[f"{prefix}.{suffix}"]
            arr = numpy_helper.to_array(init) * np.float32(factor)
            if suffix == "bias" and bias is not None:
                arr = arr + bias.astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), init.name))

    logits = []
    for k, (loc, conf) in enumerate(zip(loc_heads, conf_heads)):
        rescale(f"loc.{k}", _round(LOC_STD / max(float(values[loc].std()), 1e-6)))
        f = _round(LOGIT_STD / max(float(values[conf].std()), 1e-6))
        a = values[conf].shape[1] // NUM_CLASSES
        # Centre each class channel on the calibration picture: ReLU features have a positive mean, which would
        # otherwise hand a few classes most detections whatever the picture shows.
        centre = np.round(-values[conf][0].mean(axis=(1, 2)) * f, 2)
        rescale(f"conf.{k}", f, centre)
        logits.append((values[conf][0] * f + centre[:, None, None]).reshape(NUM_CLASSES, -1))
    z = np.concatenate(logits, axis=1).astype(np.float64)  # [81, priors]
    # Background bias B: the smallest (on a 0.25 grid) giving at most the target number of candidates.
    rest = np.exp(z[1:]).sum(axis=0)
    bias = 0.0
    while bias < 30:
        probs = np.exp(z[1:]) / (np.exp(z[0] + bias) + rest)
        if int((probs > SCORE_THRESHOLD).sum()) <= CANDIDATES_TARGET:
            break
        bias += 0.25
    boosts = np.zeros(NUM_CLASSES)
    if crowded:
        # A few classes lifted (on a 0.25 grid) until each has about CROWDED_TARGET candidates on this picture.
        for c in CROWDED_CLASSES:
            while boosts[c] < 30:
                zc = z.copy()
                zc[0] += bias
                zc[c] += boosts[c]
                e = np.exp(zc - zc.max(axis=0))
                if int((e[c] / e.sum(axis=0) > SCORE_THRESHOLD).sum()) >= CROWDED_TARGET:
                    break
                boosts[c] += 0.25
    for k, conf in enumerate(conf_heads):
        a = values[conf].shape[1] // NUM_CLASSES
        # channel = class * boxes + box: class c is channels c*a .. c*a + a - 1
        offsets = np.repeat(boosts, a)
        offsets[:a] = bias
        rescale(f"conf.{k}", 1.0, offsets)


def _reorder_boxes(boxes: np.ndarray, spec: Any) -> np.ndarray:
    """MLPerf's default boxes with, per location, the interpolated (second) box moved last."""
    out, start = [], 0
    for a, (fh, fw) in zip(spec.boxes_per_location(), spec.feature_sizes()):
        layer = boxes[start:start + a * fh * fw].reshape(a, fh * fw, 4)  # box-major within a layer
        out.append(layer[[0, *range(2, a), 1]].reshape(-1, 4))
        start += a * fh * fw
    return np.concatenate(out)


def _two_scales(boxes: np.ndarray, spec: Any) -> np.ndarray:
    """MLPerf's default boxes with the first head's 2:1 and 1:2 boxes made ratios of its sqrt(s_k s_k+1) square: that
    head then carries boxes of two scales (min sizes), which one Caffe prior_box_param cannot describe."""
    out = boxes.copy()
    a, (fh, fw) = spec.boxes_per_location()[0], spec.feature_sizes()[0]
    layer = out[:a * fh * fw].reshape(a, fh * fw, 4)  # box-major; (cx, cy, w, h)
    side = layer[1, 0, 2]
    layer[2, :, 2:] = side * np.sqrt(2), side / np.sqrt(2)
    layer[3, :, 2:] = side / np.sqrt(2), side * np.sqrt(2)
    return out


def build_model(variant: StandinVariant, seed: int, *, naming: str = "pytorch", box_order: str = "mlperf",
                crowded: bool = False) -> Any:
    """The stand-in ONNX ModelProto (calibrated); the keywords select the test variants (module docstring)."""
    if naming not in NAMINGS or box_order not in BOX_ORDERS:
        raise ValueError(f"naming {naming!r} / box_order {box_order!r}: expected one of {NAMINGS} / {BOX_ORDERS}")
    spec = DefaultBoxSpec.from_params(SPEC_PARAMS)
    shape = SHAPES[variant]
    g = _Graph(seed, naming)
    maps = _feature_maps(g, shape)
    loc, conf, loc_heads, conf_heads = _heads(g, maps, shape, spec.boxes_per_location())
    boxes = mlperf_default_boxes(spec)
    if box_order == "interpolated-last":
        boxes = _reorder_boxes(boxes, spec)
    elif box_order == "two-scales":
        boxes = _two_scales(boxes, spec)
    _postprocess(g, loc, conf, boxes.astype(np.float32))
    model = _make_model(g)
    _calibrate(model, g, loc_heads, conf_heads, crowded)
    return model


# version 2: node names equal output names, static input, reshape targets from the feature maps, priors as Constants
@register("ssd-resnet34-onnx", version=2,
          description="resnet34-ssd1200.onnx look-alike: PyTorch-style opset-10 graph, 12 heads, in-graph NMS")
def build(dest: Path, variant: StandinVariant, seed: int) -> None:
    import onnx

    model = build_model(StandinVariant(variant), seed)
    onnx.checker.check_model(model)
    Path(dest).write_bytes(model.SerializeToString())
