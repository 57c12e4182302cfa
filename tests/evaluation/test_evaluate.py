"""evaluate() on reduced stand-ins and stand-in datasets labelled by the original model: real runtimes, real
pycocotools; expected numbers computed here another way."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from edgezoo.datasets import load_image, open_dataset
from edgezoo.evaluation import metrics
from edgezoo.evaluation.api import evaluate
from edgezoo.evaluation.engine import run_subject
from edgezoo.evaluation.subjects import bundle_subjects
from edgezoo.preprocessing.mlperf import mlperf_preprocess
from tests.evaluation.eval_helpers import bundle, labelled_dataset, original

COUNT = 12


def _mlperf_log(path):
    """mlperf_log_accuracy.json parsed as MLPerf's accuracy scripts parse it."""
    return [(e["qsl_idx"], np.frombuffer(bytes.fromhex(e["data"]), np.float32)) for e in json.loads(path.read_text())]


def test_tflite_top1_is_its_agreement_with_the_labels(tmp_path):
    from edgezoo.graphs.runners import load_runner

    root = labelled_dataset("imagenet", "mobilenet-v1", COUNT)
    folder = bundle("mobilenet-v1", "tflite")
    results = evaluate([original("mobilenet-v1"), *bundle_subjects(folder)], open_dataset(root), tmp_path,
                       progress=False)
    # Independently: val_map.txt read here, the TFLite run with its own runner on MLPerf's preprocessing.
    lines = [line.split() for line in (root / "val_map.txt").read_text().splitlines()]
    runner = load_runner(folder / "model.tflite")
    good = 0
    import cv2

    for rel, label in lines:
        x = mlperf_preprocess(cv2.imread(str(root / rel)), "mobilenet-v1")[None]
        good += int(np.argmax(next(iter(runner.run({runner.inputs[0].name: x}).values()))) - 1 == int(label))
    assert results[0].value == 100.0  # the labels are the original's own predictions
    assert results[1].value == pytest.approx(100.0 * good / len(lines), abs=1e-3)
    assert results[1].delta == pytest.approx(results[1].value - 100.0, abs=1e-3)
    assert results[1].passed is None and results[1].verdict() == f"subset: {COUNT} of 50,000"
    log = _mlperf_log(tmp_path / "mobilenet-v1" / "tflite" / "mlperf_log_accuracy.json")
    assert [q for q, _ in log] == list(range(COUNT))
    saved = json.loads((tmp_path / "mobilenet-v1" / "tflite" / "accuracy.json").read_text())
    assert saved["metric"] == "top1" and saved["value"] == results[1].value and saved["count"] == COUNT


@pytest.fixture(scope="module")
def coco():
    return open_dataset(labelled_dataset("coco", "ssd-mobilenet-v1", COUNT))


def test_tflite_map_delta_is_mostly_the_unclipped_boxes(coco, tmp_path):
    """TFLite_Detection_PostProcess does not clip boxes to the image, the OD API graph does: clipping the artifact's
    records here (not in edgezoo) must give back (nearly) the original's mAP."""
    (tflite,) = bundle_subjects(bundle("ssd-mobilenet-v1", "tflite"))
    ref, art = evaluate([original("ssd-mobilenet-v1"), tflite], coco, tmp_path, progress=False)
    assert ref.value > 60.0  # ground truth = the original's confident detections
    log = _mlperf_log(tmp_path / "ssd-mobilenet-v1" / "tflite" / "mlperf_log_accuracy.json")
    clipped = []
    for qsl_idx, data in log:
        d = data.reshape(-1, 7).copy()
        d[:, 1:5] = np.clip(d[:, 1:5], 0.0, 1.0)
        clipped.append((qsl_idx, d))
    recovered = metrics.coco_map_percent(clipped, coco, use_inv_map=False)[0]
    assert art.value < ref.value - 10.0
    # Clipping alone gives back at least 80 % of the loss (the rest: detections near the ground truth's score
    # cut-off that the two post-processings rank differently).
    assert ref.value - recovered < 0.2 * (ref.value - art.value)
    detections = json.loads((tmp_path / "ssd-mobilenet-v1" / "tflite" / "coco-results.json").read_text())
    assert len(detections) == sum(len(d.reshape(-1, 7)) for _, d in log)


@pytest.mark.parametrize("damage", ["drop", "shift"])
def test_damaged_artifact_scores_measurably_lower(coco, tmp_path, damage):
    reference = original("ssd-mobilenet-v1")

    def damaged(batch):
        rows = reference.infer(batch)
        if damage == "drop":
            return rows[::2]  # every other detection lost
        shifted = rows.copy()
        shifted[:, [1, 3]] += 0.05  # boxes moved right by 5 % of the width
        return shifted

    broken = dataclasses.replace(reference, what="damaged", slug="damaged", infer=damaged)
    good, bad = evaluate([reference, broken], coco, tmp_path, progress=False)
    assert bad.value < good.value - 10.0


def test_parallel_preprocessing_gives_the_serial_records_in_order(coco):
    subject = original("ssd-mobilenet-v1")
    serial = run_subject(subject, coco.samples, load_image, workers=0, progress=False)
    pooled = run_subject(subject, coco.samples, load_image, workers=3, progress=False)
    assert [q for q, _ in pooled.records] == [s.index for s in coco.samples]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(serial.records, pooled.records))


def test_interrupted_eval_publishes_no_result(coco, tmp_path):
    reference = original("ssd-mobilenet-v1")
    calls = []

    def interrupted(batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return reference.infer(batch)

    with pytest.raises(KeyboardInterrupt):
        evaluate([dataclasses.replace(reference, infer=interrupted)], coco, tmp_path, progress=False)
    assert list(tmp_path.rglob("*")) == []  # no accuracy.json, no half-written log, no staging folder


def test_resnet34_onnx_tail_and_prototxt_on_inverse_mapped_labels(tmp_path):
    """ResNet34-SSD emits labels 1..80 (scored through MLPerf's inverse map) and keeps scores >= 0.05; its ONNX
    bundle keeps the original graph (same numbers) and its prototxt decoding must land on the same mAP."""
    dataset = open_dataset(labelled_dataset("coco", "ssd-resnet34-1200", 4))
    folder = bundle("ssd-resnet34-1200", "onnx")
    ref, tail, meta = evaluate([original("ssd-resnet34-1200"), *bundle_subjects(folder)], dataset, tmp_path,
                               progress=False)
    assert ref.value > 50.0 and tail.value == ref.value
    assert abs(meta.value - ref.value) < 1.0
    log = _mlperf_log(tmp_path / "ssd-resnet34-1200" / "original" / "mlperf_log_accuracy.json")
    rows = np.concatenate([d.reshape(-1, 7) for _, d in log])
    assert rows[:, 6].min() >= 1 and rows[:, 6].max() <= 80 and rows[:, 5].min() >= 0.05
