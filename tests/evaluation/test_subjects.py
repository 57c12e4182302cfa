"""Subjects on real runtimes: originals and bundles give records in MLPerf's conventions, and agree."""

from __future__ import annotations

import numpy as np
import pytest

from edgezoo.core.errors import EdgezooError
from edgezoo.evaluation.subjects import Runtime, bundle_subjects
from tests.evaluation.eval_helpers import bundle, original


def _photo_bgr():
    import skimage.data

    return np.ascontiguousarray(skimage.data.coffee()[..., ::-1])


def test_classification_record_is_argmax_plus_offset():
    from edgezoo.graphs.runners import load_runner

    subject = original("mobilenet-v1")
    tensor = subject.preprocess(_photo_bgr())
    probs = load_runner(subject.model_path).run({"input": tensor[None]})
    (name,) = [n for n in probs if n.endswith("Reshape_1")]
    # The 1001-class TF model: MLPerf's harness subtracts 1 (background at index 0).
    assert subject.predict(tensor, 7).tolist() == [float(np.argmax(probs[name]) - 1)]


def test_tflite_bundle_predicts_what_the_original_does():
    (converted,) = bundle_subjects(bundle("mobilenet-v1", "tflite"))
    assert converted.runtime is Runtime.LITERT and converted.standin
    image = _photo_bgr()
    reference = original("mobilenet-v1")
    assert converted.predict(converted.preprocess(image)) == reference.predict(reference.preprocess(image))


def test_detection_records_have_seven_floats_with_qsl_idx_and_coco_ids():
    subject = original("ssd-mobilenet-v1")
    records = subject.predict(subject.preprocess(_photo_bgr()), qsl_idx=42)
    assert records.dtype == np.float32 and records.ndim == 2 and records.shape[1] == 7 and len(records) > 0
    assert (records[:, 0] == 42).all()
    assert ((records[:, 6] >= 1) & (records[:, 6] <= 90)).all()  # COCO ids, no inverse map for this model
    assert not subject.use_inv_map


def test_onnx_ssd_bundle_is_two_subjects_that_agree():
    subjects = bundle_subjects(bundle("ssd-mobilenet-v1", "onnx"))
    assert [s.runtime for s in subjects] == [Runtime.ONNX_RUNTIME, Runtime.META_ARCH]
    image = _photo_bgr()
    tail, meta = (s.predict(s.preprocess(image)) for s in subjects)
    # Both decode the same heads; the ONNX tail is the OD API's own post-processing, the prototxt TIDL's.
    top_tail, top_meta = tail[np.argsort(-tail[:, 5])][:5], meta[np.argsort(-meta[:, 5])][:5]
    assert np.allclose(top_tail[:, 1:6], top_meta[:, 1:6], atol=2e-3)
    assert (top_tail[:, 6] == top_meta[:, 6]).all()


def test_folder_without_config_yaml_is_refused(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"x")
    with pytest.raises(EdgezooError, match="no config.yaml"):
        bundle_subjects(tmp_path)
