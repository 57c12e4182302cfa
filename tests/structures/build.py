"""Materialise one structure: decompress its stored files, refill the stripped weights, write the user's layout."""

from __future__ import annotations

import functools
import lzma
from pathlib import Path

from tests.structures.calibrate import Scoring
from tests.structures.catalog import DATA, Structure
from tests.structures.inputs import InputSpec, photographs


def stored_bytes(name: str, user_file: str) -> bytes:
    entry = _entry(name, user_file)
    data = (DATA / name / entry["stored"]).read_bytes()
    return lzma.decompress(data) if entry["stored"].endswith(".xz") else data


def _entry(name: str, user_file: str) -> dict:
    from tests.structures.catalog import _manifest

    return _manifest(name)["files"][user_file]


def refill_spec(structure: Structure) -> tuple[dict, Scoring, InputSpec]:
    refill = structure.manifest["refill"]
    scoring = Scoring(softmax=refill["scoring"]["softmax"], background=refill["scoring"]["background"])
    return refill["heads"], scoring, InputSpec.from_json(refill["input"])


def build(structure: Structure, dest: Path, seed: int) -> Path:
    kind = structure.manifest["kind"]
    dest.mkdir(parents=True)
    if kind == "onnx":
        return _build_onnx(structure, dest, seed)
    if kind == "tf1-export":
        return _build_tf1_export(structure, dest, seed)
    if kind == "tf1-tflite-graph":
        return _build_tf1_tflite_graph(structure, dest, seed)
    if kind in ("tf2-export", "tf2-tflite-savedmodel"):
        return _build_tf2(structure, dest, seed)
    raise ValueError(f"{structure.name}: unknown kind {kind}")


def _build_onnx(structure: Structure, dest: Path, seed: int) -> Path:
    import onnx

    from tests.structures.onnx_refill import refill_onnx

    user_file = structure.manifest["user_file"]
    model = onnx.load_model_from_string(stored_bytes(structure.name, user_file))
    heads, scoring, input_spec = refill_spec(structure)
    stripped = _entry(structure.name, user_file)["stripped"]
    refill_onnx(model, stripped, heads, scoring, input_spec, photographs(), seed)
    out = dest / user_file
    out.write_bytes(model.SerializeToString())
    return out


def _graph_def(name: str, user_file: str):
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(stored_bytes(name, user_file))
    return gd


def refilled_graph_def(structure: Structure, user_file: str, seed: int):
    """(GraphDef with its weights refilled, the values by Const name); calibrated once per process."""
    import tensorflow as tf

    data, values = _refilled(structure.name, user_file, seed)
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(data)
    return gd, values


@functools.lru_cache(maxsize=None)
def _refilled(name: str, user_file: str, seed: int) -> tuple[bytes, dict]:
    from tests.structures.catalog import STRUCTURES
    from tests.structures.tf_refill import refill_graph_def

    gd = _graph_def(name, user_file)
    heads, scoring, input_spec = refill_spec(STRUCTURES[name])
    stripped = _entry(name, user_file)["stripped"]
    values = refill_graph_def(gd, stripped, heads, scoring, input_spec, photographs(), seed)
    return gd.SerializeToString(), values


def _build_tf1_export(structure: Structure, dest: Path, seed: int) -> Path:
    """The folder exporter.export_inference_graph writes: frozen_inference_graph.pb + pipeline.config."""
    gd, _values = refilled_graph_def(structure, "frozen_inference_graph.pb", seed)
    (dest / "frozen_inference_graph.pb").write_bytes(gd.SerializeToString())
    (dest / "pipeline.config").write_bytes(stored_bytes(structure.name, "pipeline.config"))
    return dest


def _build_tf1_tflite_graph(structure: Structure, dest: Path, seed: int) -> Path:
    """tflite_graph.pb with the same weights as the export folder of the same model (as one checkpoint gives)."""
    from tests.structures.catalog import STRUCTURES
    from tests.structures.tf_refill import fill_consts

    source = structure.manifest["weights_from"]
    _gd, values = refilled_graph_def(STRUCTURES[source["structure"]], source["file"], seed)
    user_file = structure.manifest["user_file"]
    gd = _graph_def(structure.name, user_file)
    renamed = source["names"]
    stripped = _entry(structure.name, user_file)["stripped"]
    fill_consts(gd, {name: values[renamed.get(name, name)] for name in stripped})
    out = dest / user_file
    out.write_bytes(gd.SerializeToString())
    return out


def _build_tf2(structure: Structure, dest: Path, seed: int) -> Path:
    """A TF2 SavedModel folder (and pipeline.config for the export folder): saved_model.pb as the exporter wrote
    it, variables/ written from the refilled serving function's constants under the checkpoint's own keys."""
    from tests.structures.catalog import STRUCTURES
    from tests.structures.savedmodel import write_variables

    source = structure.manifest.get("weights_from", {"structure": structure.name, "file": "serving_function.pb"})
    _gd, values = refilled_graph_def(STRUCTURES[source["structure"]], source["file"], seed)
    saved = dest / "saved_model"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(stored_bytes(structure.name, "saved_model/saved_model.pb"))
    write_variables(saved / "variables" / "variables", structure.manifest["checkpoint"], values,
                    stored_bytes(structure.name, "saved_model/variables/object_graph"))
    if "pipeline.config" in structure.manifest["files"]:
        (dest / "pipeline.config").write_bytes(stored_bytes(structure.name, "pipeline.config"))
    return dest
