import numpy as np
import onnx
import onnxruntime as ort

import ssd_models
from edgezoo.datasets.images import photographs
from edgezoo.preprocessing.card import preprocess
from edgezoo.ssd.onnx_heads import find_heads, fix_image_input
from edgezoo.tidl.meta_arch.execute import MetaArchExecutor
from edgezoo.tidl.meta_arch.prior_fold import fold_clamped_priors
from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, mlperf_default_boxes
from edgezoo.zoo import get_card


def _run(model, heads, x):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for name in heads.box_inputs + heads.class_inputs:
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    out = ort.InferenceSession(m.SerializeToString()).run(heads.box_inputs, {"image": x})
    return out


def test_folding_makes_tidl_priors_decode_mlperf_boxes_exactly():
    card = get_card("ssd-resnet34-1200")
    spec = DefaultBoxSpec.from_params(card.recipe("onnx").params)
    model = fix_image_input(onnx.load(ssd_models.reduced_standin()), 1200, 1200)
    heads = find_heads(model, 81)
    ssd = ssd_models.generated_meta(ssd_models.reduced_standin()).single_ssd()
    folded, result = fold_clamped_priors(model, heads, ssd, spec)
    assert result.priors == 18 and result.unfoldable == []
    assert [(k, a) for k, a, _, _ in result.anchors] == [(5, 2), (5, 3)]
    assert abs(result.anchors[0][2] - 1 / (1044 * 2 ** 0.5 / 1200)) < 1e-9 and result.anchors[0][3] == 1.0

    x = preprocess(photographs(("astronaut",))[0][1], card.preprocess)
    executor = MetaArchExecutor(ssd)
    zeros = [np.zeros((1, h.class_channels) + h.grid, dtype=np.float32) for h in heads.heads]

    def decoded_in_mlperf_order(box_outputs):
        boxes, _ = executor.decode(box_outputs, zeros)  # Caffe order: head, row, column, anchor
        out, start = [], 0
        for h in heads.heads:
            n = h.boxes_per_location * h.grid[0] * h.grid[1]
            out.append(boxes[start:start + n].reshape(*h.grid, h.boxes_per_location, 4).transpose(2, 0, 1, 3)
                       .reshape(-1, 4))
            start += n
        return np.concatenate(out)

    # what MLPerf decodes from the ORIGINAL heads, with its clamped default boxes
    loc = np.concatenate([b.reshape(4, -1) for b in _run(model, heads, x)], axis=1).T.astype(np.float64)
    priors = mlperf_default_boxes(spec)
    xy = loc[:, :2] * 0.1 * priors[:, 2:] + priors[:, :2]
    wh = np.exp(loc[:, 2:] * 0.2) * priors[:, 2:]
    mlperf = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    plain = np.abs(decoded_in_mlperf_order(_run(model, heads, x)) - mlperf).max(axis=1)
    after = np.abs(decoded_in_mlperf_order(_run(folded, heads, x)) - mlperf).max(axis=1)
    assert (plain > 0.05).sum() == 18 and plain.max() > 0.1  # the clamped boxes, before folding
    assert after.max() < 2e-5  # every one of the 15130 priors, after


def test_a_weight_shared_by_several_heads_is_copied_before_one_head_is_rewritten():
    """FPN / PPN heads (WeightSharedConvolutionalBoxPredictor) run one kernel on every level: folding or permuting
    one head must not rewrite the others."""
    from onnx import TensorProto, helper, numpy_helper

    from edgezoo.detection.codings import CodeType
    from edgezoo.tidl.meta_arch.prior_fold import fold_size_ratios

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 1, 1)).astype(np.float32), "shared_w")
    b = numpy_helper.from_array(rng.normal(0, 0.3, (8,)).astype(np.float32), "shared_b")
    cls_w = numpy_helper.from_array(rng.normal(0, 0.3, (6, 3, 1, 1)).astype(np.float32), "cls_w")
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2])]
    for k, feat in enumerate(("x", "p")):
        nodes += [helper.make_node("Conv", [feat, "shared_w", "shared_b"], [f"box{k}"]),
                  helper.make_node("Conv", [feat, "cls_w"], [f"cls{k}"])]
        for kind, rows in (("box", 4), ("cls", 3)):
            nodes += [helper.make_node("Transpose", [f"{kind}{k}"], [f"t_{kind}{k}"], perm=[0, 2, 3, 1]),
                      helper.make_node("Reshape", [f"t_{kind}{k}", f"shape{rows}"], [f"r_{kind}{k}"])]
    nodes += [helper.make_node("Concat", ["r_box0", "r_box1"], ["loc"], axis=1),
              helper.make_node("Concat", ["r_cls0", "r_cls1"], ["conf"], axis=1)]
    shapes = [numpy_helper.from_array(np.array([1, -1, r], np.int64), f"shape{r}") for r in (4, 3)]
    graph = helper.make_graph(nodes, "shared", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("loc", "conf")],
                              [w, b, cls_w, *shapes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    heads = find_heads(model, 3)
    ratios = [np.ones((2, 2)), np.array([[2.0, 1.0], [1.0, 0.5]])]  # fold head 1 only
    folded, _ = fold_size_ratios(model, heads, ratios, (0.1, 0.1, 0.2, 0.2), CodeType.CENTER_SIZE)
    x = rng.normal(0, 1, (1, 3, 4, 4)).astype(np.float32)

    def heads_out(m):
        probe = onnx.ModelProto()
        probe.CopyFrom(m)
        for name in ("box0", "box1"):
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        return ort.InferenceSession(probe.SerializeToString()).run(["box0", "box1"], {"x": x})

    before, after = heads_out(model), heads_out(folded)
    np.testing.assert_array_equal(before[0], after[0])  # head 0 reads the shared kernel untouched
    assert not np.allclose(before[1], after[1])  # head 1 has its own, folded copy
