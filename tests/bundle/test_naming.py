"""Two exports of different files with the same name never land on the same bundle."""

import json

from edgezoo.bundle.naming import bundle_name


def _bundle(root, name, target, sha):
    folder = root / name / target
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"sources": [{"file": "model.onnx", "sha256": sha}]}))


def test_same_sources_reuse_the_name_other_sources_get_their_own(tmp_path):
    assert bundle_name(tmp_path, "model", "onnx", ["a" * 64]) == ("model", None)  # nothing there yet
    _bundle(tmp_path, "model", "onnx", "a" * 64)
    assert bundle_name(tmp_path, "model", "onnx", ["a" * 64]) == ("model", None)  # the same file again: replaced
    name, note = bundle_name(tmp_path, "model", "onnx", ["b" * 64])
    assert name == "model-bbbbbbbb" and "holds the bundle of another model" in note
    assert bundle_name(tmp_path, "model", "tflite", ["b" * 64]) == ("model", None)  # another target: its own folder
