"""materialize() writes every catalogued structure in the layout its exporter gives users, with every stripped weight
refilled; the structure-only form (weights=False) is seeded, runs, and keeps the graph as the exporter wrote it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.structures import STRUCTURES, materialize, materialized
from tests.structures.build import build, refill_spec
from tests.structures.catalog import available
from tests.structures.inputs import photographs
from tests.structures.selection import params

# what the exporter leaves in the folder materialize() returns (or the file it returns, for one-file structures)
_SAVED_MODEL = ["saved_model/saved_model.pb", "saved_model/variables/variables.data-00000-of-00001",
                "saved_model/variables/variables.index"]
LAYOUTS = {
    "onnx": ["model.onnx"],
    "tf1-export": ["frozen_inference_graph.pb", "pipeline.config"],
    "tf1-tflite-graph": ["tflite_graph.pb"],
    "tf2-export": ["pipeline.config", *_SAVED_MODEL],
    "tf2-tflite-savedmodel": _SAVED_MODEL,
}


def test_every_catalogued_structure_is_stored():
    assert available() == list(STRUCTURES)


@pytest.mark.parametrize("name", params(STRUCTURES, weights=False))
def test_every_structure_materialises(name, tmp_path):
    structure = STRUCTURES[name]
    kind = structure.manifest["kind"]
    path = materialize(name, tmp_path, weights=False)
    root = tmp_path / name
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == LAYOUTS[kind]
    assert path == (root if kind in ("tf1-export", "tf2-export", "tf2-tflite-savedmodel") else root / LAYOUTS[kind][0])
    expected, written = _weights(structure, root)
    assert {k: list(v.shape) for k, v in written.items()} == expected
    assert all(np.isfinite(v).all() for v in written.values())


def _weights(structure, root) -> tuple[dict[str, list], dict[str, np.ndarray]]:
    """(shape of every weight the structure stripped, what the materialised files hold for it)."""
    import onnx

    manifest = structure.manifest
    kind = manifest["kind"]
    if kind.startswith("tf2"):
        import tensorflow as tf

        keys = manifest["checkpoint"]["keys"]
        reader = tf.train.load_checkpoint(str(root / "saved_model" / "variables" / "variables"))
        weights = manifest["checkpoint"]["weights"]
        return {k: keys[k][0] for k in weights}, {k: reader.get_tensor(k) for k in weights}
    expected, written = {}, {}
    for user_file, entry in manifest["files"].items():
        stripped = entry.get("stripped", {})
        expected.update(stripped)
        if kind == "onnx":
            model = onnx.load(str(root / user_file))
            written.update({i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer
                            if i.name in stripped})
        elif stripped:
            import tensorflow as tf

            gd = tf.compat.v1.GraphDef()
            gd.ParseFromString((root / user_file).read_bytes())
            written.update({n.name: tf.make_ndarray(n.attr["value"].tensor) for n in gd.node
                            if n.op == "Const" and n.name in stripped})
    return expected, written


def test_structure_only_form_is_seeded(tmp_path):
    import onnx

    name = "tv-ssdlite320-c21"
    first = materialized(name, weights=False)
    assert build(STRUCTURES[name], tmp_path / "fresh", 0, weights=False).read_bytes() == first.read_bytes()
    other = onnx.load(str(materialize(name, tmp_path, seed=1, weights=False)))
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(first)).graph.initializer}
    changed = {i.name for i in other.graph.initializer
               if not np.array_equal(onnx.numpy_helper.to_array(i), weights[i.name])}
    kernels = {n.input[1] for n in other.graph.node if n.op_type == "Conv"}
    assert changed == kernels  # kernels are seeded He-normal; biases zero, norms identities


def test_structure_only_form_runs(tmp_path):
    """Plain weights are not realistic, but the graph runs on a photograph and gives finite outputs."""
    from tests.structures.checks import onnx_outputs

    name = "nvidia-ssd300-r18-onnxnms"
    _heads, _scoring, spec = refill_spec(STRUCTURES[name])
    (run,) = onnx_outputs(materialized(name, weights=False), spec, photographs()[:1])
    assert run["bboxes"].shape[0] > 0
    assert all(np.isfinite(v).all() for v in run.values())
