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
