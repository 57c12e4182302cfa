"""The TF1 OD API structures (exporter.py / export_tflite_ssd_graph) are what they claim, with realistic weights."""

from __future__ import annotations

import numpy as np
import pytest

from tests.structures import STRUCTURES, materialized
from tests.structures.build import refill_spec, stored_bytes
from tests.structures.catalog import available
from tests.structures.inputs import InputSpec, UNSEEN_PHOTOGRAPHS, photographs

EXPORTS = [n for n in available() if STRUCTURES[n].manifest["kind"] == "tf1-export"]
TFLITE_GRAPHS = [n for n in available() if STRUCTURES[n].manifest["kind"] == "tf1-tflite-graph"]


def _param(name: str):
    marks = [pytest.mark.fullsize] if STRUCTURES[name].fullsize else []
    return pytest.param(name, marks=marks, id=name)


def _graph_def(path):
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(path.read_bytes())
    return gd


class _Session:
    def __init__(self, gd):
        import tensorflow as tf

        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(gd, name="")
        self.session = tf.compat.v1.Session(graph=self.graph)

    def run(self, fetch, feed):
        return self.session.run(fetch, feed)


def _frozen(name):
    return _graph_def(materialized(name) / "frozen_inference_graph.pb")


@pytest.mark.parametrize("name", [_param(n) for n in EXPORTS])
def test_export_folder_is_the_exported_structure(name):
    from tests.structures.regenerate.tf_compact import graph_facts

    structure = STRUCTURES[name]
    folder = materialized(name)
    assert sorted(p.name for p in folder.iterdir()) == ["frozen_inference_graph.pb", "pipeline.config"]
    assert (folder / "pipeline.config").read_bytes() == stored_bytes(name, "pipeline.config")
    gd = _frozen(name)
    facts = graph_facts(gd)
    for key in ("ops", "nodes", "inputs", "key_nodes"):
        assert facts[key] == structure.facts[key], key
    stored = {n.name: n for n in _graph_def_bytes(stored_bytes(name, "frozen_inference_graph.pb")).node}
    stripped = structure.manifest["files"]["frozen_inference_graph.pb"]["stripped"]
    import tensorflow as tf

    for node in gd.node:
        if node.name in stripped:
            value = tf.make_ndarray(node.attr["value"].tensor)
            assert list(value.shape) == stripped[node.name] and np.isfinite(value).all(), node.name
        else:
            assert node == stored[node.name], node.name  # (map fields: compare messages, not bytes)


def _graph_def_bytes(data):
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(data)
    return gd


@pytest.mark.parametrize("name", [_param(n) for n in EXPORTS])
def test_export_activations_stay_order_one(name):
    gd = _frozen(name)
    session = _Session(gd)
    _heads, _scoring, spec = refill_spec(STRUCTURES[name])
    norms = [n.name + ":0" for n in gd.node if n.op.startswith("FusedBatchNorm")]
    heads = [n.name + ":0" for n in gd.node if n.op == "BiasAdd" and "Predictor" in n.name]
    assert len(norms) >= 20 and len(heads) >= 2
    stds = {}
    for image in photographs():
        values = session.run(norms + heads, {spec.name + ":0": spec.feed(image)})
        for name_, v in zip(norms + heads, values):
            stds.setdefault(name_, []).append(v.std())
    spread = {k: float(np.mean(v)) for k, v in stds.items()}
    assert min(spread.values()) > 0.05, min(spread.items(), key=lambda kv: kv[1])
    assert max(spread.values()) < 20, max(spread.items(), key=lambda kv: kv[1])


@pytest.mark.parametrize("name", [_param(n) for n in EXPORTS])
def test_export_gives_photographs_a_few_confident_detections(name):
    session = _Session(_frozen(name))
    _heads, _scoring, spec = refill_spec(STRUCTURES[name])
    for images in (photographs(), photographs(UNSEEN_PHOTOGRAPHS)):
        confident = []
        for image in images:
            scores, count = session.run(["detection_scores:0", "num_detections:0"],
                                        {spec.name + ":0": spec.feed(image)})
            assert int(count[0]) == 100  # score_threshold 1e-8: max_total_detections
            confident.append(int((scores[0] >= 0.5).sum()))
        assert sum(c >= 1 for c in confident) >= len(images) - 1, confident
        assert 1 <= np.median(confident) <= 60, confident


def _ssd_anchors(size_layers=(19, 10, 5, 3, 2, 1), min_scale=0.2, max_scale=0.95) -> np.ndarray:
    """OD API ssd_anchor_generator anchors (ycenter, xcenter, h, w), written from its documented rules."""
    ratios = (1.0, 2.0, 0.5, 3.0, 0.3333)
    n = len(size_layers)
    scales = [min_scale + (max_scale - min_scale) * i / (n - 1) for i in range(n)] + [1.0]
    out = []
    for i, f in enumerate(size_layers):
        if i == 0:
            boxes = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            boxes = [(scales[i], r) for r in ratios] + [(np.sqrt(scales[i] * scales[i + 1]), 1.0)]
        for y in range(f):
            for x in range(f):
                for s, r in boxes:
                    out.append(((y + 0.5) / f, (x + 0.5) / f, s / np.sqrt(r), s * np.sqrt(r)))
    return np.array(out, np.float32)


@pytest.mark.parametrize("name", [_param(n) for n in TFLITE_GRAPHS])
def test_tflite_graph_has_the_export_folders_weights(name):
    """tflite_graph.pb's raw outputs equal the frozen graph's box encodings and scores: one checkpoint."""
    import tensorflow as tf

    structure = STRUCTURES[name]
    source = structure.manifest["weights_from"]["structure"]
    tflite = _graph_def(materialized(name))
    raw = tf.compat.v1.graph_util.extract_sub_graph(
        tflite, ["raw_outputs/box_encodings", "raw_outputs/class_predictions"])
    ours = _Session(raw)
    theirs = _Session(_frozen(source))
    spec = InputSpec.from_json(structure.manifest["refill"]["input"])
    frozen_spec = refill_spec(STRUCTURES[source])[2]
    names = {op.name for op in theirs.graph.get_operations()}
    encodings = "Squeeze:0" if "Squeeze" in names else "concat:0"  # weight-shared predictors concat [N, A, 4]
    for image in photographs()[:2]:
        boxes, scores = ours.run(["raw_outputs/box_encodings:0", "raw_outputs/class_predictions:0"],
                                 {spec.name + ":0": spec.feed(image)})
        ref_boxes, ref_scores = theirs.run([encodings, "Postprocessor/convert_scores:0"],
                                           {frozen_spec.name + ":0": frozen_spec.feed(image)})
        assert boxes.shape == ref_boxes.shape and scores.shape == ref_scores.shape
        np.testing.assert_allclose(boxes, ref_boxes, atol=2e-3, rtol=1e-3)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-3)
    attrs = structure.facts["postprocess_attrs"]
    assert attrs["max_detections"] == 10 and attrs["use_regular_nms"] is False
    assert (attrs["y_scale"], attrs["x_scale"], attrs["h_scale"], attrs["w_scale"]) == (10, 10, 5, 5)
    assert attrs["num_classes"] == structure.facts["classes"]


def test_ssd_mobilenet_v1_anchors_are_the_generators():
    import tensorflow as tf

    gd = _graph_def(materialized("tf1-ssd_mobilenet_v1_coco-tflite_graph"))
    (anchors,) = [tf.make_ndarray(n.attr["value"].tensor) for n in gd.node if n.name == "anchors"]
    assert anchors.shape == (1917, 4) == (STRUCTURES["tf1-ssd_mobilenet_v1_coco"].facts["anchors"], 4)
    np.testing.assert_allclose(anchors, _ssd_anchors(), atol=1e-5)
