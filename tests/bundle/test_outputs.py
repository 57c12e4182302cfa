"""Publishing replaces only what edgezoo wrote, of the same kind, and never an input of the running command; names
taken from files never leave --out. Real bundles, real commands, real folders of the user's files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

import tiny_models as tm
from edgezoo.cli import main
from edgezoo.bundle.outputs import MARKER, OutputFolderError, OutputKind, check_destination, kind_of, safe_name
from tests.evaluation.eval_helpers import bundle, labelled_dataset

COUNT = 6


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(capsys, argv: list, needle: str) -> str:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err, err
    return err


@pytest.fixture
def exported(tmp_path):
    """A private copy of a real exported bundle at tmp/out/mobilenet-v1/tflite."""
    dest = tmp_path / "out" / "mobilenet-v1" / "tflite"
    shutil.copytree(bundle("mobilenet-v1", "tflite"), dest)
    return dest


def test_eval_never_replaces_the_bundle_it_evaluates(tmp_path, capsys, exported):
    before = _snapshot(exported)
    data = labelled_dataset("imagenet", "mobilenet-v1", 8)
    _refused(capsys, ["eval", exported, "--dataset", data, "--out", tmp_path / "out", "--count", COUNT],
             f"{exported}: is {exported}, an input of this command")
    assert _snapshot(exported) == before


def test_eval_does_not_replace_a_bundle_it_does_not_read(tmp_path, capsys, exported):
    before = _snapshot(exported)
    data = labelled_dataset("imagenet", "mobilenet-v1", 8)
    argv = ["eval", bundle("mobilenet-v1", "tflite"), "--dataset", data, "--out", tmp_path / "out", "--count", COUNT]
    _refused(capsys, argv, f"{exported}: exists and it holds a bundle; edgezoo replaces only evaluation results")
    assert _snapshot(exported) == before
    shutil.rmtree(exported)
    for _ in range(2):  # its own results, though, are replaced run after run
        assert main([str(a) for a in argv]) == 0
    assert kind_of(exported) is OutputKind.EVAL and (exported / "accuracy.json").is_file()


def test_bench_writes_no_loadgen_logs_into_a_bundle(tmp_path, capsys, exported):
    before = _snapshot(exported)
    data = labelled_dataset("imagenet", "mobilenet-v1", 8)
    _refused(capsys, ["bench", bundle("mobilenet-v1", "tflite"), "--dataset", data, "--scenario", "SingleStream",
                      "--min-duration-ms", "100", "--min-query-count", "4", "--out", tmp_path / "out"],
             f"lies inside {exported}, a bundle edgezoo wrote")
    assert _snapshot(exported) == before


def _export_onnx(src: Path, out: Path) -> list[str]:
    return ["export", "--graph", str(src), "--inputs", f"x:0:1x3x{tm.H}x{tm.W}", "--outputs", "dense/BiasAdd:0",
            "--to", "onnx", "--out", str(out)]


def test_export_keeps_a_users_folder_and_replaces_its_own_bundle(tmp_path, capsys):
    src = tm.build_onnx(tmp_path / "mine.onnx")
    users = tmp_path / "out" / "mine" / "onnx"
    users.mkdir(parents=True)
    (users / "notes.txt").write_text("my notes")
    _refused(capsys, _export_onnx(src, tmp_path / "out"), f"{users}: exists and edgezoo did not write it")
    assert (users / "notes.txt").read_text() == "my notes" and sorted(p.name for p in users.iterdir()) == ["notes.txt"]
    (users / "notes.txt").unlink()  # an empty folder holds nothing to lose
    assert main(_export_onnx(src, tmp_path / "out")) == 0
    assert kind_of(users) is OutputKind.BUNDLE
    assert main(_export_onnx(src, tmp_path / "out")) == 0  # its own bundle: replaced
    # A bundle written before the marker existed is still recognised by its manifest.
    (users / MARKER).unlink()
    assert main(_export_onnx(src, tmp_path / "out")) == 0 and (users / MARKER).is_file()


def test_export_never_replaces_its_own_input(tmp_path, capsys):
    out = tmp_path / "out"
    src_folder = out / "mine" / "onnx"
    src_folder.mkdir(parents=True)
    src = tm.build_onnx(src_folder / "mine.onnx")
    _refused(capsys, _export_onnx(src, out), f"{src_folder}: holds {src}, an input of this command")
    assert src.is_file()


@pytest.mark.parametrize("name", ["...onnx", "..onnx"])
def test_a_model_file_named_dots_cannot_put_the_bundle_outside_out(tmp_path, capsys, name):
    src = tmp_path / "models" / name
    src.parent.mkdir()
    tm.build_onnx(src)
    out = tmp_path / "models" / "out"
    _refused(capsys, _export_onnx(src, out), f"its name {Path(name).stem!r} cannot name an output folder")
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["models", name])


def test_od_api_archive_named_dotdot_gets_a_confined_name(tmp_path):
    from edgezoo.export.od_api import locate_sources

    dots = _tar(tmp_path / "..tar.gz")
    with pytest.raises(Exception, match=r"\.\.tar\.gz: its name '\.+' cannot name an output folder"):
        safe_name(locate_sources(dots, None).name, dots)
    assert safe_name(locate_sources(_tar(tmp_path / "my model (v2).tar.gz"), None).name, "x") == "my_model__v2_"


def _tar(dest: Path) -> Path:
    import io
    import tarfile

    with tarfile.open(dest, "w:gz") as tar:
        for member, data in (("m/frozen_inference_graph.pb", b"\x0a\x00"), ("m/pipeline.config", b"model {}")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def test_safe_names_and_the_destination_rules(tmp_path):
    assert safe_name("ssd_mobilenet_v2.coco", "x") == "ssd_mobilenet_v2.coco"
    assert safe_name(".hidden", "x") == "hidden" and safe_name("résumé net", "x") == "résumé_net"
    assert safe_name("a/b\\c", "x") == "a_b_c" and len(safe_name("n" * 500, "x")) == 128
    for bad in ("..", ".", "...", "", "-_."):
        with pytest.raises(Exception, match="cannot name an output folder"):
            safe_name(bad, "x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(OutputFolderError, match="is a link"):
        check_destination(link, OutputKind.BUNDLE)
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"outputs": []}))  # a manifest, but not edgezoo's
    with pytest.raises(OutputFolderError, match="edgezoo did not write it"):
        check_destination(other, OutputKind.BUNDLE)
    (other / MARKER).write_text(json.dumps({"kind": "bench"}))
    with pytest.raises(OutputFolderError, match="it holds LoadGen logs"):
        check_destination(other, OutputKind.EVAL)
    check_destination(other, OutputKind.BENCH)
    with pytest.raises(OutputFolderError, match="lies inside"):
        check_destination(other / "nested" / "deeper", OutputKind.BENCH)
