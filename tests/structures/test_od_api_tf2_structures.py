"""The TF2 OD API structures (exporter_lib_v2 / export_tflite_graph_lib_tf2) are real SavedModels with the refilled
weights, and their detections are realistic."""

from __future__ import annotations

import numpy as np
import pytest

from tests.structures import STRUCTURES, materialized
from tests.structures.build import refill_spec, refilled_graph_def, stored_bytes
from tests.structures.catalog import available
from tests.structures.inputs import UNSEEN_PHOTOGRAPHS, photographs

EXPORTS = [n for n in available() if STRUCTURES[n].manifest["kind"] == "tf2-export"]
LITE = [n for n in available() if STRUCTURES[n].manifest["kind"] == "tf2-tflite-savedmodel"]


def _param(name: str):
    marks = [pytest.mark.fullsize] if STRUCTURES[name].fullsize else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in EXPORTS + LITE])
def test_savedmodel_folder_is_the_exported_one(name):
    import tensorflow as tf

    structure = STRUCTURES[name]
    folder = materialized(name)
    saved = folder / "saved_model"
    assert (saved / "saved_model.pb").read_bytes() == stored_bytes(name, "saved_model/saved_model.pb")
    assert sorted(p.name for p in (saved / "variables").iterdir()) == \
        ["variables.data-00000-of-00001", "variables.index"]
    if structure.manifest["kind"] == "tf2-export":
        assert (folder / "pipeline.config").read_bytes() == stored_bytes(name, "pipeline.config")
    reader = tf.train.load_checkpoint(str(saved / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    expected = structure.manifest["checkpoint"]["keys"]
    assert {k: list(v) for k, v in shapes.items() if k != "_CHECKPOINTABLE_OBJECT_GRAPH"} == \
        {k: shape for k, (shape, _dtype) in expected.items()}
    loaded = tf.saved_model.load(str(saved))
    assert "serving_default" in loaded.signatures


@pytest.mark.parametrize("name", [_param(n) for n in EXPORTS])
def test_savedmodel_runs_the_refilled_weights(name):
    """The SavedModel (loaded by TF, variables restored) gives the refilled frozen function's detections."""
    import tensorflow as tf

    structure = STRUCTURES[name]
    loaded = tf.saved_model.load(str(materialized(name) / "saved_model"))
    fn = loaded.signatures["serving_default"]
    gd, _values = refilled_graph_def(structure, "serving_function.pb", 0)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    session = tf.compat.v1.Session(graph=graph)
    outputs = structure.facts["serving_outputs"]
    _heads, _scoring, spec = refill_spec(structure)
    confident = {"seen": [], "unseen": []}
    for kind, images in (("seen", photographs()), ("unseen", photographs(UNSEEN_PHOTOGRAPHS))):
        for image in images:
            x = spec.feed(image)
            got = fn(**{structure.facts["serving_inputs"][0].split(":")[0]: tf.constant(x)})
            ref = session.run(outputs["detection_scores"], {structure.facts["serving_inputs"][0]: x})
            np.testing.assert_allclose(got["detection_scores"].numpy(), ref, atol=1e-3)  # grappler vs frozen
            scores = got["detection_scores"].numpy()[0]
            assert int(got["num_detections"].numpy()[0]) == 100
            confident[kind].append(int((scores >= 0.5).sum()))
    for counts in confident.values():
        assert sum(c >= 1 for c in counts) >= len(counts) - 1, confident
        assert 1 <= np.median(counts) <= 60, confident


@pytest.mark.parametrize("name", [_param(n) for n in LITE])
def test_tflite_savedmodel_converts_as_tfs_docs_say(name):
    """export_tflite_graph_tf2's SavedModel -> TFLite (TFLITE_BUILTINS + SELECT_TF_OPS, as TF's guide shows): the
    result holds TFLite_Detection_PostProcess and gives photographs a few confident detections (at most 10)."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    structure = STRUCTURES[name]
    converter = tf.lite.TFLiteConverter.from_saved_model(str(materialized(name) / "saved_model"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    model = converter.convert()
    assert b"TFLite_Detection_PostProcess" in model
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    size = structure.facts["size"]
    assert list(inp["shape"]) == [1, size, size, 3]
    from tests.structures.inputs import InputSpec

    spec = InputSpec(inp["name"], "nhwc", (size, size), scale=2.0 / 255.0, mean=(1.0, 1.0, 1.0))
    confident = []
    for image in photographs():
        interpreter.set_tensor(inp["index"], spec.feed(image))
        interpreter.invoke()
        outs = [interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()]
        count = int(next(o for o in outs if o.size == 1).reshape(-1)[0])
        scores = next(o for o in outs if o.shape == (1, 10) and o.max() <= 1.0 and o.min() >= 0.0
                      and not np.array_equal(o, np.round(o)))
        assert 0 < count <= 10
        confident.append(int((scores[0, :count] >= 0.5).sum()))
    assert sum(c >= 1 for c in confident) >= len(confident) - 1, confident
