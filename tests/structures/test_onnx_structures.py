"""The PyTorch structures (torch.onnx exports) are what they claim, and their refilled weights are realistic."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tests.structures import STRUCTURES, materialize, materialized
from tests.structures.build import refill_spec, stored_bytes
from tests.structures.catalog import Family, available
from tests.structures.checks import onnx_conv_stds, onnx_outputs, onnx_spread
from tests.structures.inputs import UNSEEN_PHOTOGRAPHS, photographs

ONNX = [name for name in available() if STRUCTURES[name].manifest["kind"] == "onnx"]


def _param(name: str):
    marks = [pytest.mark.fullsize] if STRUCTURES[name].fullsize else []
    return pytest.param(name, marks=marks, id=name)


def _scores_output(name: str) -> str:
    return "scores"


@pytest.mark.parametrize("name", [_param(n) for n in ONNX])
def test_materialised_model_is_the_exported_structure(name):
    import onnx

    from tests.structures.regenerate.compact import onnx_facts

    structure = STRUCTURES[name]
    model = onnx.load(str(materialized(name)))
    onnx.checker.check_model(model)
    facts = onnx_facts(model)
    expected = structure.facts
    assert facts["ops"] == expected["ops"]
    assert facts["inputs"] == expected["inputs"]
    assert facts["outputs"] == expected["outputs"]
    assert facts["opset"] == expected["opset"]
    # every weight filled with its recorded shape; every other initializer byte for byte as the exporter wrote it
    stored = onnx.load_model_from_string(stored_bytes(name, "model.onnx"))
    stripped = structure.manifest["files"]["model.onnx"]["stripped"]
    original = {i.name: i for i in stored.graph.initializer}
    for init in model.graph.initializer:
        if init.name in stripped:
            array = onnx.numpy_helper.to_array(init)
            assert list(array.shape) == stripped[init.name] and np.isfinite(array).all() and array.std() > 0
        else:
            assert init.SerializeToString() == original[init.name].SerializeToString(), init.name


@pytest.mark.parametrize("name", [_param(n) for n in ONNX])
def test_activations_stay_order_one(name):
    _heads, _scoring, spec = refill_spec(STRUCTURES[name])
    stds = onnx_conv_stds(materialized(name), spec, photographs())
    values = np.array(list(stds.values()))
    assert len(values) >= 20
    # convolutions of a trained network: neither vanishing (the 1e-15 of a random MobileNetV3) nor exploding
    assert values.min() > 0.05, min(stds.items(), key=lambda kv: kv[1])
    assert values.max() < 20, max(stds.items(), key=lambda kv: kv[1])


@pytest.mark.parametrize("name", [_param(n) for n in ONNX])
def test_photographs_get_a_few_confident_detections(name):
    _heads, _scoring, spec = refill_spec(STRUCTURES[name])
    limit = STRUCTURES[name].facts["postprocess"]["max_total"]
    for images in (photographs(), photographs(UNSEEN_PHOTOGRAPHS)):
        spread = onnx_spread(materialized(name), spec, images, _scores_output(name))
        # every photograph gets detections, most get a few confident ones, none is flooded with them
        assert all(0 < n <= limit for n in spread.detections), spread.summary()
        assert sum(c >= 1 for c in spread.confident) >= len(images) - 1, spread.summary()
        assert max(spread.confident) <= 0.6 * limit, spread.summary()
        assert 1 <= np.median(spread.confident) <= 60, spread.summary()


def test_refill_is_seeded(tmp_path):
    import onnx

    name = "tv-ssdlite320-c21"
    from tests.structures.build import build

    again = build(STRUCTURES[name], tmp_path / "fresh", 0)  # not the process cache: a second calibration
    assert again.read_bytes() == materialized(name).read_bytes()
    assert materialize(name, tmp_path / "copy").read_bytes() == again.read_bytes()
    other = onnx.load(str(materialize(name, tmp_path / "other", seed=1)))
    first = onnx.load(str(materialized(name)))
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in first.graph.initializer}
    changed = [i.name for i in other.graph.initializer
               if not np.array_equal(onnx.numpy_helper.to_array(i), weights[i.name])]
    stripped = set(STRUCTURES[name].manifest["files"]["model.onnx"]["stripped"])
    class_biases = {k.replace(".weight", ".bias") for k in STRUCTURES[name].manifest["refill"]["heads"]["class"]}
    assert set(changed) == stripped - class_biases  # class-head biases are the seed-independent flat-region prior


def _nodes(model, op):
    out = []

    def walk(graph, inside):
        for node in graph.node:
            if node.op_type == op:
                out.append((node, inside))
            for attr in node.attribute:
                if attr.HasField("g"):
                    walk(attr.g, node.op_type)
    walk(model.graph, None)
    return out


def _constant(model, name):
    import onnx

    for init in model.graph.initializer:
        if init.name == name:
            return onnx.numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return onnx.numpy_helper.to_array(node.attribute[0].t)
    return None


def test_nvidia_onnx_nms_limits_are_the_written_ones():
    import onnx

    model = onnx.load(str(materialized("nvidia-ssd300-r18-onnxnms")))
    (nms, inside), = _nodes(model, "NonMaxSuppression")
    assert inside is None
    assert [float(_constant(model, n).reshape(-1)[0]) for n in nms.input[2:]] == pytest.approx([200, 0.5, 0.05])
    # the total limit: TopK(k = Reshape(Cast(Min(200, Cast(Gather(Shape(selected))))), [1])) -- not a constant
    producer = {o: n for n in model.graph.node for o in n.output}
    (topk, _), = _nodes(model, "TopK")
    reshape = producer[topk.input[1]]
    assert reshape.op_type == "Reshape"
    minimum = producer[reshape.input[0]]
    while minimum.op_type == "Cast":
        minimum = producer[minimum.input[0]]
    assert minimum.op_type == "Min"
    assert sorted(float(_constant(model, n)) for n in minimum.input if _constant(model, n) is not None) == [200]


def test_nvidia_batched_nms_sits_in_an_if():
    import onnx

    model = onnx.load(str(materialized("nvidia-ssd300-r18-batchednms")))
    assert [inside for _node, inside in _nodes(model, "NonMaxSuppression")] == ["If"]


def _nvidia_default_boxes() -> np.ndarray:
    """MLPerf / NVIDIA SSD300 default boxes (cx, cy, w, h), computed here from the published parameters."""
    sizes, steps = (38, 19, 10, 5, 3, 1), (8, 16, 32, 64, 100, 300)
    scales, ratios = (21, 45, 99, 153, 207, 261, 315), ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
    out = []
    for k, f in enumerate(sizes):
        s, s_next = scales[k] / 300, scales[k + 1] / 300
        wh = [(s, s), (math.sqrt(s * s_next),) * 2]
        for r in ratios[k]:
            wh += [(s * math.sqrt(r), s / math.sqrt(r)), (s / math.sqrt(r), s * math.sqrt(r))]
        for w, h in wh:
            for i, j in itertools.product(range(f), repeat=2):
                out.append(((j + 0.5) * steps[k] / 300, (i + 0.5) * steps[k] / 300, w, h))
    return np.clip(np.array(out, np.float32), 0, 1)


@pytest.mark.parametrize("name", [n for n in ONNX if STRUCTURES[n].family is Family.NVIDIA_SSD300])
def test_nvidia_priors_are_mlperf_default_boxes(name):
    import onnx

    model = onnx.load(str(materialized(name)))
    pairs = [onnx.numpy_helper.to_array(i) for i in model.graph.initializer if tuple(i.dims) == (1, 8732, 2)]
    boxes = _nvidia_default_boxes()
    assert len(pairs) == 2
    found = {tuple(np.round(p[0, 0], 6)) for p in pairs}
    assert found == {tuple(np.round(boxes[0, :2], 6)), tuple(np.round(boxes[0, 2:], 6))}
    for p in pairs:
        assert np.allclose(p[0], boxes[:, :2], atol=1e-6) or np.allclose(p[0], boxes[:, 2:], atol=1e-6)


@pytest.mark.parametrize("name", [n for n in ONNX if STRUCTURES[n].family is Family.TORCHVISION])
def test_torchvision_input_and_postprocessing(name):
    import onnx

    structure = STRUCTURES[name]
    model = onnx.load(str(materialized(name)))
    (shape,) = structure.facts["inputs"].values()
    size = structure.manifest["refill"]["input"]["size"]
    assert shape == ([3, *size] if name.endswith("-raw") else [1, 3, *size])
    assert [inside for _node, inside in _nodes(model, "NonMaxSuppression")] == ["If"]
    # per-class candidate selection: one TopK per foreground class
    assert len(_nodes(model, "TopK")) == structure.facts["classes"] - 1
    _heads, _scoring, spec = refill_spec(structure)
    (run,) = onnx_outputs(materialized(name), spec, photographs()[:1])
    boxes, scores, labels = (run[n] for n in ("boxes", "scores", "labels"))
    assert boxes.shape == (scores.size, 4) and labels.min() >= 1 and labels.max() < structure.facts["classes"]
    assert (boxes >= 0).all() and (boxes[:, 2] <= size[1]).all() and (boxes[:, 3] <= size[0]).all()
    assert np.all(np.diff(scores) <= 1e-6)  # sorted by score, as batched_nms leaves them
