"""Materialise one structure: decompress its stored files, refill the stripped weights, write the user's layout."""

from __future__ import annotations

import lzma
from pathlib import Path

from tests.structures.calibrate import Scoring
from tests.structures.catalog import DATA, Structure
from tests.structures.inputs import InputSpec, photographs


def stored_bytes(name: str, user_file: str) -> bytes:
    entry = _entry(name, user_file)
    return lzma.decompress((DATA / name / entry["stored"]).read_bytes())


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
