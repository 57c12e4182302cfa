"""The SSD-MobileNet stand-ins: published interface and node names, realistic detections, tarball and ONNX."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from edgezoo.standins import StandinVariant, get_builder
from edgezoo.standins import ssd_mobilenet as S
from tests.ssd_helpers import reduced_onnx, reduced_source


@pytest.fixture(scope="module")
def graph_def():
    from edgezoo.graphs import tf_graph

    return tf_graph.load_graph_def(reduced_source() / "frozen_inference_graph.pb")


@pytest.fixture(scope="module")
def runner():
    from edgezoo.graphs.runners import load_runner

    return load_runner(reduced_source() / "frozen_inference_graph.pb", outputs=list(S.OUTPUTS))


def test_published_names_and_interface(graph_def):
    nodes = {n.name: n for n in graph_def.node}
    image = nodes["image_tensor"]
    assert image.op == "Placeholder" and image.attr["dtype"].type == 4  # uint8
    assert [d.size for d in image.attr["shape"].shape.dim] == [-1, -1, -1, 3]
    for name in ["Preprocessor/sub", "concat", "concat_1", "Squeeze", "Postprocessor/convert_scores",
                 S.ANCHOR_TENSOR, *S.OUTPUTS]:
        assert name in nodes, name
    for i in range(6):
        for kind in ("BoxEncodingPredictor", "ClassPredictor"):
            assert nodes[f"BoxPredictor_{i}/{kind}/BiasAdd"].op == "BiasAdd"
    assert nodes["Postprocessor/convert_scores"].op == "Sigmoid"
    # per-class NMS inside a batch loop, as in the published graph
    assert any(n.op.startswith("NonMaxSuppression") for n in graph_def.node)
    assert any(n.op == "Enter" for n in graph_def.node)


def test_any_image_size_and_batch(runner):
    rng = np.random.default_rng(1)
    out = runner.run({"image_tensor": rng.integers(0, 255, (2, 211, 333, 3), dtype=np.uint8)})
    assert out["detection_boxes"].shape == (2, 100, 4) and out["detection_classes"].shape == (2, 100)
    assert out["num_detections"].shape == (2,)


def test_internal_shapes(graph_def):
    from edgezoo.graphs import tf_graph

    g = tf_graph.import_graph(graph_def)
    assert g.get_tensor_by_name("Preprocessor/sub:0").shape.as_list() == [None, 300, 300, 3]
    assert g.get_tensor_by_name("concat:0").shape.as_list() == [None, 1917, 1, 4]
    assert g.get_tensor_by_name("concat_1:0").shape.as_list() == [None, 1917, 91]
    assert g.get_tensor_by_name("Squeeze:0").shape.as_list() == [None, 1917, 4]
    grids = [g.get_tensor_by_name(f"BoxPredictor_{i}/BoxEncodingPredictor/BiasAdd:0").shape.as_list()[1:]
             for i in range(6)]
    assert grids == [[19, 19, 12], [10, 10, 24], [5, 5, 24], [3, 3, 24], [2, 2, 24], [1, 1, 24]]


def test_realistic_detections_on_photographs(runner):
    """Scores cross the 0.3 threshold on real photographs, with counts and classes depending on the image."""
    from edgezoo.datasets import images

    counts, classes = [], set()
    for _, image in images.photographs():
        out = runner.run({"image_tensor": image[None]})
        n = int(out["num_detections"][0])
        scores = out["detection_scores"][0]
        assert np.all(scores[:n] > 0.3) and not scores[n:].any()
        assert np.all((out["detection_boxes"][0][:n] >= 0) & (out["detection_boxes"][0][:n] <= 1))  # clipped
        cls = out["detection_classes"][0][:n]
        assert np.all((cls >= 1) & (cls <= 90)) and np.all(cls == np.round(cls))  # COCO ids
        counts.append(n)
        classes |= set(cls.astype(int).tolist())
    assert min(counts) >= 1 and len(set(counts)) >= 3, counts
    assert len(classes) >= 10


def test_tarball_members(tmp_path, monkeypatch):
    builder = get_builder("ssd-mobilenet-v1-tgz")
    dest = tmp_path / "ssd.tar.gz"
    builder.build(dest, StandinVariant.REDUCED, 0)
    with tarfile.open(dest) as tar:
        names = tar.getnames()
        assert S.GRAPH_MEMBER in names and S.CONFIG_MEMBER in names
        config = tar.extractfile(S.CONFIG_MEMBER).read().decode()
    assert "score_threshold: 0.300000011921" in config
    again = tmp_path / "again.tar.gz"
    builder.build(again, StandinVariant.REDUCED, 0)
    assert again.read_bytes() == dest.read_bytes()  # deterministic: stand-in checksums are stable


def test_published_style_onnx(runner):
    """tf2onnx of the stand-in: opset 10, uint8 NHWC image_tensor:0, NMS inside a Loop, four outputs."""
    from edgezoo.datasets import images
    from edgezoo.graphs import onnx_model
    from edgezoo.graphs.runners import load_runner
    from edgezoo.detection.detections import Detections, match_detections

    path = reduced_onnx()
    model = onnx_model.load(path)
    assert onnx_model.opset(model) == 10
    assert [i.name for i in onnx_model.graph_inputs(model)] == ["image_tensor:0"]
    assert sorted(onnx_model.output_names(model)) == sorted(f"{o}:0" for o in S.OUTPUTS)
    ops = {n.op_type for n in model.graph.node}
    assert "Loop" in ops
    body_ops = {n.op_type for node in model.graph.node if node.op_type == "Loop"
                for n in node.attribute[0].g.node}
    assert "NonMaxSuppression" in body_ops
    onnx_runner = load_runner(path)
    assert onnx_runner.inputs[0].dtype == "uint8"
    name, image = images.photographs(("coffee",))[0]
    a, b = runner.run({"image_tensor": image[None]}), onnx_runner.run({"image_tensor:0": image[None]})
    dets = [Detections(o[f"detection_boxes{s}"][0][:int(o[f"num_detections{s}"][0])],
                       o[f"detection_scores{s}"][0][:int(o[f"num_detections{s}"][0])],
                       o[f"detection_classes{s}"][0][:int(o[f"num_detections{s}"][0])]) for o, s in ((a, ""), (b, ":0"))]
    m = match_detections(dets[0], dets[1], 0.9)
    assert len(dets[0]) > 0 and m.reference_matched_fraction == 1.0 and m.converted_matched_fraction == 1.0
