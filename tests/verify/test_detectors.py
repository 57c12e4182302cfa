"""Detectors read the published output conventions and feed each model in its own input layout and dtype."""

from __future__ import annotations

import numpy as np
import pytest

import ssd_models
from edgezoo.core.errors import ModelFileError
from edgezoo.datasets.images import photographs
from edgezoo.verify.detectors import MLPERF_RESNET34, OD_API, find_outputs, image_feed, od_api_detector
from edgezoo.zoo import get_card
from tests.ssd_helpers import reduced_source


def test_mlperf_resnet34_outputs_are_read_and_boxes_reordered():
    from edgezoo.preprocessing.card import preprocess
    from edgezoo.graphs.runners import load_runner

    card = get_card("ssd-resnet34")
    model = ssd_models.reduced_standin()
    (_, image), = photographs(("astronaut",))
    for c in (card, None):  # by the card's roles and by the known names
        detector = od_api_detector(model, card.preprocess, c)
        assert "bboxes, labels, scores (boxes x, y order)" in detector.description
        dets = detector.run(image)
        raw = load_runner(model).run({"image": preprocess(image, card.preprocess)})
        assert len(dets) == raw["scores"].shape[1] >= 50  # no count output: every row is a detection
        np.testing.assert_array_equal(dets.boxes, raw["bboxes"][0][:, [1, 0, 3, 2]])  # xyxy -> yxyx
        np.testing.assert_array_equal(dets.classes, raw["labels"][0])


def test_find_outputs_conventions_and_errors(tmp_path):
    names = ["detection_boxes:0", "detection_classes:0", "detection_scores:0", "num_detections:0"]
    found = find_outputs(tmp_path / "m.onnx", names)
    assert (found.boxes, found.count, found.order) == ("detection_boxes:0", "num_detections:0", "yxyx")
    assert find_outputs(tmp_path / "m.onnx", ["scores", "labels", "bboxes"]).order == MLPERF_RESNET34.order == "xyxy"
    with pytest.raises(ModelFileError, match="no 'num_detections' output") as exc:
        find_outputs(tmp_path / "m.onnx", names[:3])
    assert "detection_boxes:0" in exc.value.hint
    with pytest.raises(ModelFileError, match=r"cannot tell the boxes/classes/scores among its outputs \(loc, probs\)"):
        find_outputs(tmp_path / "m.onnx", ["loc", "probs"])
    assert OD_API.names() == ["detection_boxes", "detection_classes", "detection_scores", "num_detections"]


def test_each_model_is_fed_in_its_own_layout_and_dtype():
    from edgezoo.graphs.runners import load_runner

    card = get_card("ssd-mobilenet")
    (_, image), = photographs(("coffee",))
    graph = load_runner(reduced_source() / "frozen_inference_graph.pb", outputs=OD_API.names())
    onnx = load_runner(ssd_models.reduced_standin())
    (pixels,) = image_feed(graph, card.preprocess, "graph")(image).values()
    (normalised,) = image_feed(onnx, card.preprocess, "onnx")(image).values()
    assert pixels.dtype == np.uint8 and pixels.shape == (1, 300, 300, 3)
    assert normalised.dtype == np.float32 and normalised.shape == (1, 3, 300, 300)
    # The same truncated pixels, normalised (x - 127.5) / 127.5 as the card says.
    np.testing.assert_allclose(normalised[0].transpose(1, 2, 0), (pixels[0] - 127.5) / 127.5, atol=1e-6)
