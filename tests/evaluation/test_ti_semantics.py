"""`eval --semantics ti` equals TI's pipeline image by image: an independent implementation of TI's documented
steps (edgeai-benchmark 11.2: read, resize on uint8, TI's crop, (x - mean) * scale, the runtime called directly, the
outputs concatenated and reformatted as config.yaml says, boxes scaled and clipped to the image, the threshold, the
label map, COCO's [x, y, w, h] and pycocotools) against edgezoo's, on real bundles (reduced stand-ins)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from edgezoo.cli import main
from edgezoo.datasets import open_dataset
from edgezoo.evaluation.api import evaluate
from edgezoo.evaluation.ti_postprocess import TiDetectionPost
from edgezoo.evaluation.ti_scoring import label_to_category
from edgezoo.evaluation.ti_subjects import ti_bundle_subjects, ti_original_subject
from tests.evaluation import eval_helpers

COUNT = 8  # the stand-in datasets the other evaluation tests build (shared within a test process)


def _reference_input(path, config) -> np.ndarray:
    """TI's transforms for backend cv2 and an exact [h, w] or short-side resize, written from TI's documentation."""
    pre, session = config["preprocess"], config["session"]
    rgb = cv2.imread(str(path))[:, :, ::-1]
    h, w = rgb.shape[:2]
    size = pre["resize"]
    if isinstance(size, int):
        out_h, out_w = (size, w * size // h) if h <= w else (h * size // w, size)
    else:
        out_h, out_w = size
    flag = pre["interpolation"] or cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(rgb), (out_w, out_h), interpolation=flag)
    crop_h, crop_w = (pre["crop"], pre["crop"]) if isinstance(pre["crop"], int) else pre["crop"]
    top, left = (out_h - crop_h + 1) // 2, (out_w - crop_w + 1) // 2
    tensor = resized[top:top + crop_h, left:left + crop_w][None]
    mean = np.array(session["input_mean"], np.float32)
    scale = np.array(session["input_scale"], np.float32)
    if pre["data_layout"] == "NCHW":
        return (tensor.transpose(0, 3, 1, 2) - mean[None, :, None, None]) * scale[None, :, None, None]
    return (tensor - mean) * scale


def _reference_outputs(model_path, tensor) -> list[np.ndarray]:
    """The runtime called directly, every output in the model's order."""
    if model_path.suffix == ".onnx":
        import onnxruntime

        sess = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: tensor})
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model_path), num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], tensor)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def _reference_detections(outputs, config, height, width) -> list[tuple]:
    """Rows (x1, y1, x2, y2, category, score) as TI's post-processing and COCO formatting give them, one at a time."""
    post = config["postprocess"]
    order = post["shuffle_indices"] or [0, 1, 2]
    boxes, labels, scores = (outputs[i] for i in order)
    boxes = boxes.reshape(-1, 4)
    dtype = np.result_type(boxes, labels, scores)  # TI concatenates the three
    yxyx = post["formatter"] is not None
    threshold = post.get("detection_threshold") or 0.3
    rows = []
    for box, label, score in zip(boxes.astype(dtype), labels.reshape(-1).astype(dtype), scores.reshape(-1)
                                 .astype(dtype)):
        y1, x1, y2, x2 = box if yxyx else (box[1], box[0], box[3], box[2])
        x1, x2 = (np.clip(v * dtype.type(width), 0, width) for v in (x1, x2))
        y1, y2 = (np.clip(v * dtype.type(height), 0, height) for v in (y1, y2))
        if score < dtype.type(threshold):
            continue
        offset = config["metric"]["label_offset_pred"]
        category = (offset.get(int(label), 0) if isinstance(offset, dict) else int(label + offset))
        if category >= 1:
            rows.append((float(x1), float(y1), float(x2 - x1), float(y2 - y1), category, float(score)))
    return rows


def _reference_map(dataset, detections) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(dataset.annotations_path))
    gt.imgs = {s.image_id: gt.imgs[s.image_id] for s in dataset.samples}  # TI: its dataset's first num_frames
    if not detections:
        return 0.0
    evaluator = COCOeval(gt, gt.loadRes(detections), iouType="bbox")
    evaluator.params.imgIds = sorted(gt.getImgIds())
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return 100.0 * evaluator.stats[0]


@pytest.mark.parametrize("model, target", [("ssd-mobilenet-v1", "tflite"), ("ssd-resnet34-1200", "onnx")])
def test_detection_bundle_equals_tis_pipeline_image_by_image(model, target, tmp_path):
    bundle = eval_helpers.bundle(model, target)
    config = yaml.safe_load((bundle / "config.yaml").read_text())
    dataset = open_dataset(eval_helpers.labelled_dataset("coco", model, 4 if "resnet34" in model else COUNT))
    subject = ti_bundle_subjects(bundle)[0]
    expected = []
    for sample in dataset.samples:
        image = cv2.imread(str(sample.path))
        tensor = subject.preprocess(image)
        reference = _reference_input(sample.path, config)
        np.testing.assert_array_equal(tensor[None], reference)
        rows = subject.post.finish(subject.predict(tensor, sample.index), sample.height, sample.width)
        mine = [(float(r[0]), float(r[1]), float(r[2] - r[0]), float(r[3] - r[1]),
                 label_to_category(r[4], config["metric"]["label_offset_pred"]), float(r[5])) for r in rows]
        want = _reference_detections(_reference_outputs(bundle / config["session"]["model_path"], reference),
                                     config, *image.shape[:2])
        assert [m for m in mine if m[4] >= 1] == want, sample.path.name
        expected += [{"image_id": sample.image_id, "bbox": list(r[:4]), "category_id": r[4], "score": r[5]}
                     for r in want]
    assert expected, "no detection at all: the comparison would prove nothing"
    assert all(0 <= d["bbox"][0] and d["bbox"][0] + d["bbox"][2] <= s.width + 1e-3
               for d in expected for s in dataset.samples if s.image_id == d["image_id"])  # clipped
    (result,) = [r for r in evaluate([subject], dataset, tmp_path, progress=False)]
    assert result.semantics == "ti" and result.value == round(_reference_map(dataset, expected), 3)
    written = json.loads((tmp_path / model / subject.slug / "coco-results.json").read_text())
    assert len(written) == len(expected)
    assert not (tmp_path / model / subject.slug / "mlperf_log_accuracy.json").exists()


def test_classification_bundle_equals_tis_pipeline_image_by_image():
    bundle = eval_helpers.bundle("mobilenet-v1", "onnx")
    config = yaml.safe_load((bundle / "config.yaml").read_text())
    dataset = open_dataset(eval_helpers.labelled_dataset("imagenet", "mobilenet-v1", COUNT))
    (subject,) = ti_bundle_subjects(bundle)
    for sample in dataset.samples:
        tensor = subject.preprocess(cv2.imread(str(sample.path)))
        reference = _reference_input(sample.path, config)
        np.testing.assert_array_equal(tensor[None], reference)
        logits = _reference_outputs(bundle / "model.onnx", reference)[0]
        assert subject.predict(tensor)[0] == int(np.argmax(logits[0])) + config["metric"]["label_offset_pred"]


def test_shuffled_outputs_with_a_count_are_formatted_as_tis_concat():
    """SSD-MobileNet ONNX's tail: boxes (yxyx), scores, classes, num_detections; TI shuffles [0, 2, 1] (the count is
    dropped), concatenates, squeezes the batch and swaps the box columns."""
    rng = np.random.default_rng(0)
    boxes, scores = rng.random((1, 5, 4), np.float32), rng.random((1, 5), np.float32)
    classes, count = rng.integers(1, 90, (1, 5)).astype(np.float32), np.array([5.0], np.float32)
    config = {"postprocess": {"formatter": {"name": "DetectionYXYX2XYXY", "src_indices": [1, 0, 3, 2],
                                            "dst_indices": [0, 1, 2, 3]}, "shuffle_indices": [0, 2, 1],
                              "squeeze_axis": 0, "reshape_list": None}}
    rows = TiDetectionPost.from_config(config).format([boxes, scores, classes, count])
    expected = [[b[1], b[0], b[3], b[2], c, s] for b, s, c in zip(boxes[0], scores[0], classes[0])]
    assert rows.dtype == np.float32 and rows.tolist() == np.array(expected, np.float32).tolist()


def test_int64_labels_make_tis_rows_float64():
    config = {"postprocess": {"formatter": None, "reshape_list": [[-1, 4], [-1, 1], [-1, 1]], "squeeze_axis": None}}
    rows = TiDetectionPost.from_config(config).format([np.ones((1, 3, 4), np.float32), np.arange(3)[None],
                                                       np.full((1, 3), 0.5, np.float32)])
    assert rows.dtype == np.float64 and rows.shape == (3, 6) and rows[:, 4].tolist() == [0, 1, 2]


def test_threshold_and_label_map_follow_config():
    """detection_threshold from the config (0 or missing: TI's 0.3); a label missing from a map scores as 0."""
    config = {"postprocess": {"formatter": None, "detection_threshold": 0.05}}
    rows = np.array([[0.1, 0.1, 1.2, 0.5, 3, 0.06], [-0.2, 0.0, 0.5, 0.5, 4, 0.04]], np.float32)
    kept = TiDetectionPost.from_config(config).finish(rows, 100, 200)
    np.testing.assert_allclose(kept, [[20, 10, 200, 50, 3, 0.06]], rtol=1e-6)  # x2 clipped to the width
    config["postprocess"]["detection_threshold"] = 0
    assert TiDetectionPost.from_config(config).threshold == 0.3
    assert label_to_category(5.0, {5: 17}) == 17 and label_to_category(6.0, {5: 17}) == 0
    assert label_to_category(5.0, -1) == 4 and label_to_category(2.0, [0, 7, 9]) == 9


def test_original_under_ti_semantics_is_fed_tis_pixels():
    """SSD-MobileNet's original takes uint8: TI's resized pixels (rounded), not MLPerf's truncated ones."""
    original = ti_original_subject(eval_helpers.original("ssd-mobilenet-v1"))
    dataset = open_dataset(eval_helpers.labelled_dataset("coco", "ssd-mobilenet-v1", COUNT))
    path = dataset.samples[0].path
    pixels = original.preprocess(cv2.imread(str(path)))
    expected = cv2.resize(np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1]), (300, 300))
    assert pixels.dtype == np.uint8 and np.array_equal(pixels, expected)


def test_eval_semantics_both_shows_both_figures_and_the_conversions_own_delta(tmp_path, capsys):
    bundle = eval_helpers.bundle("ssd-mobilenet-v1", "tflite")
    data = eval_helpers.labelled_dataset("coco", "ssd-mobilenet-v1", COUNT)
    with eval_helpers.helper_cache():
        code = main(["eval", "ssd-mobilenet-v1", str(bundle), "--dataset", str(data), "--standin",
                     "--standin-variant", "reduced", "--offline", "--semantics", "both", "--json",
                     "--out", str(tmp_path)])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["semantics"] for r in results] == ["mlperf", "ti", "mlperf", "ti"]
    original_ti, bundle_ti = results[1], results[3]
    assert bundle_ti["delta"] == pytest.approx(bundle_ti["value"] - original_ti["value"], abs=1e-3)
    assert results[2]["delta"] == pytest.approx(results[2]["value"] - results[0]["value"], abs=1e-3)
    assert all(r["passed"] is None for r in results)


def test_bad_semantics_value_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "mobilenet-v1", "--dataset", str(tmp_path), "--semantics", "tidl"])
    assert exit_info.value.code == 2 and "invalid choice: 'tidl'" in capsys.readouterr().err


def test_ti_subjects_are_rebuilt_from_their_source_in_another_process():
    """What a Ray actor receives: the source, pickled; it builds the same TI subject (bundle and original)."""
    import pickle

    subjects = [*ti_bundle_subjects(eval_helpers.bundle("ssd-mobilenet-v1", "tflite")),
                ti_original_subject(eval_helpers.original("ssd-mobilenet-v1"))]
    for subject in subjects:
        rebuilt = pickle.loads(pickle.dumps(subject.source)).build()
        assert (rebuilt.what, rebuilt.semantics, type(rebuilt)) == (subject.what, "ti", type(subject))
