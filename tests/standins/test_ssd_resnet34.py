import numpy as np
import onnx
import pytest

import ssd_models
from edgezoo.datasets.images import photographs
from edgezoo.graphs.runners import load_runner
from edgezoo.preprocessing.card import preprocess
from edgezoo.standins import StandinVariant, get_builder
from edgezoo.standins.ssd_resnet34 import SPEC_PARAMS
from edgezoo.tidl.meta_arch.priors import DefaultBoxSpec, mlperf_default_boxes
from edgezoo.zoo import get_card


@pytest.fixture(scope="module")
def model_path():
    return ssd_models.reduced_standin()


def test_interface_and_operators_like_the_published_file(model_path):
    model = onnx.load(model_path)
    onnx.checker.check_model(model)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 10)]
    (inp,) = model.graph.input
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "image" and dims == [1, 3, 1200, 1200]  # static, as exported
    assert [o.name for o in model.graph.output] == ["bboxes", "labels", "scores"]
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [1, 7, 1]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("NonMaxSuppression") == 1 and "TopK" in ops and "Softmax" in ops
    heads = [n for n in model.graph.node if n.op_type == "Conv" and
             [a.ints for a in n.attribute if a.name == "strides"][0] == [3, 3]]
    assert len(heads) == 12
    for n in heads:
        attrs = {a.name: list(a.ints) for a in n.attribute if a.ints}
        assert attrs["kernel_shape"] == [3, 3] and attrs["pads"] == [1, 1, 1, 1]
    assert all(n.name == f"{n.op_type}_{k}" for k, n in enumerate(model.graph.node))  # torch.onnx naming
    outputs = {"bboxes", "labels", "scores"}
    assert all(n.output[0] == n.name for n in model.graph.node if n.output[0] not in outputs)
    producers = {o: n for n in model.graph.node for o in n.output}
    # every head's Reshape takes its target from Shape of the FEATURE MAP the head conv reads
    for conv in heads:
        (reshape,) = [n for n in model.graph.node if conv.output[0] in n.input]
        assert reshape.op_type == "Reshape"
        target = producers[reshape.input[1]]
        shape_nodes = [producers[i] for i in producers[producers[target.input[0]].input[0]].input
                       if i in producers and producers[i].op_type == "Shape"]
        assert target.op_type == "Concat" and [s.input[0] for s in shape_nodes] == [conv.input[0]]
    # priors: two Constant nodes [1, 15130, 2] (xy, wh) equal to MLPerf's clamped default boxes
    priors = [n for n in model.graph.node if n.op_type == "Constant" and
              list(n.attribute[0].t.dims) == [1, 15130, 2]]
    assert len(priors) == 2 and not any(i.name.startswith("dboxes") for i in model.graph.initializer)
    want = mlperf_default_boxes(DefaultBoxSpec.from_params(SPEC_PARAMS))
    got = np.concatenate([onnx.numpy_helper.to_array(p.attribute[0].t)[0] for p in priors], axis=1)
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_older_naming_variant_keeps_numbered_tensors():
    model = onnx.load(ssd_models.reduced_standin(naming="numbered"))
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert all(n.output[0].isdigit() and n.name.startswith("Conv_") for n in convs)
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim[2:]]
    assert dims == ["height", "width"]


def test_builds_are_deterministic(tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    for dest in (a, b):
        get_builder("ssd-resnet34-onnx").build(dest, StandinVariant.REDUCED, 0)
    assert a.read_bytes() == b.read_bytes() == ssd_models.reduced_standin().read_bytes()


def test_real_photographs_give_content_dependent_detections(model_path):
    """Detections above 0.05 that differ from picture to picture, decoded exactly as MLPerf decodes."""
    model = onnx.load(model_path)
    cats = [n.output[0] for n in model.graph.node if n.op_type == "Concat" and len(n.input) == 6]
    runner = load_runner(model_path, outputs=["bboxes", "labels", "scores", *cats])
    card = get_card("ssd-resnet34-1200")
    priors = mlperf_default_boxes(DefaultBoxSpec.from_params(SPEC_PARAMS))
    counts = {}
    for name, image in photographs():
        out = runner.run({"image": preprocess(image, card.preprocess)})
        boxes, labels, scores = out["bboxes"][0], out["labels"][0], out["scores"][0]
        loc, logits = out[cats[0]][0].T.astype(np.float64), out[cats[1]][0].T.astype(np.float64)
        counts[name] = len(scores)
        assert len(scores) <= 200 and np.all(scores > 0.05) and np.all(np.diff(scores) <= 0)
        assert labels.dtype == np.int64 and np.all((labels >= 1) & (labels <= 80))
        # independent numpy decode: every output box is some prior's decoded box, with that prior's softmax score
        xy = loc[:, :2] * 0.1 * priors[:, 2:] + priors[:, :2]
        wh = np.exp(loc[:, 2:] * 0.2) * priors[:, 2:]
        decoded = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        for box, label, score in zip(boxes[:20], labels[:20], scores[:20]):
            k = int(np.argmin(np.abs(decoded - box).max(axis=1)))
            assert np.abs(decoded[k] - box).max() < 1e-5 and abs(probs[k, label] - score) < 1e-5
    assert counts["astronaut"] >= 20 and len(set(counts.values())) >= 3, counts
