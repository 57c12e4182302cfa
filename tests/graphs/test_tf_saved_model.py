"""TF2 SavedModels: recognised as such where a frozen graph is expected, their serving function frozen with its
outputs reachable by their signature names (a real SavedModel written by tf.saved_model.save)."""

import numpy as np
import pytest

from edgezoo.core.errors import ModelFileError
from edgezoo.graphs import tf_graph
from edgezoo.graphs.runners import load_runner
from edgezoo.graphs.tf_saved_model import freeze_serving


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    import tensorflow as tf

    class Detector(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.arange(12, dtype=np.float32).reshape(3, 4) / 10)

        @tf.function(input_signature=[tf.TensorSpec([1, 3], tf.float32, name="input_tensor")])
        def serve(self, x):
            y = tf.matmul(x, self.w)
            return {"detection_scores": tf.sigmoid(y), "num_detections": tf.reduce_sum(y, axis=1)}

    folder = tmp_path_factory.mktemp("exported") / "saved_model"
    module = Detector()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def test_a_saved_model_given_as_a_frozen_graph_is_named_and_sent_to_its_route(saved_model):
    with pytest.raises(ModelFileError) as err:
        tf_graph.load_graph_def(saved_model / "saved_model.pb")
    assert "a TF SavedModel (TF2 export), not a frozen graph" in str(err.value)
    assert "--graph EXPORT_FOLDER --to tflite" in err.value.hint and "fetch" not in err.value.hint


def test_the_serving_function_frozen_keeps_its_names_and_values(saved_model, tmp_path):
    pb = freeze_serving(saved_model, tmp_path / "frozen.pb")
    graph_def = tf_graph.load_graph_def(pb)
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    assert placeholders == ["input_tensor"]  # the lowered control flow's unused placeholders are gone
    runner = load_runner(pb, outputs=["detection_scores", "num_detections"])
    x = np.array([[1.0, -2.0, 0.5]], np.float32)
    out = runner.run({"input_tensor": x}, ["detection_scores", "num_detections"])
    y = x @ (np.arange(12, dtype=np.float32).reshape(3, 4) / 10)
    np.testing.assert_allclose(out["detection_scores"], 1 / (1 + np.exp(-y)), rtol=1e-6)
    np.testing.assert_allclose(out["num_detections"], y.sum(axis=1), rtol=1e-6)


def test_a_folder_without_a_serving_signature_says_so(tmp_path):
    import tensorflow as tf

    folder = tmp_path / "saved_model"
    tf.saved_model.save(tf.Module(), str(folder))
    with pytest.raises(ModelFileError, match="no 'serving_default' signature"):
        freeze_serving(folder, tmp_path / "frozen.pb")
