"""Where results go, checked before the work: `--out FILE`, a read-only --out (found before the inference, not
after it), `quantize .` (the new bundle beside the float bundle, never inside it), and a full disk during eval (the
message names a folder that still exists, so its `df -h` hint works)."""

from __future__ import annotations

import os
import shutil

import pytest

from edgezoo.cli import main
from tests.evaluation.eval_helpers import bundle, labelled_dataset


def _last_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def _tree(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", [
    ["export", "resnet50", "--to", "onnx", "--standin", "--standin-variant", "reduced", "--offline"],
    ["eval", "{bundle}", "--dataset", "{data}"],
    ["bench", "{bundle}", "--dataset", "{data}", "--scenario", "Offline"],
], ids=["export", "eval", "bench"])
def test_out_is_a_file(tmp_path, capsys, command):
    folder, data = bundle("mobilenet-v1", "tflite"), labelled_dataset("imagenet", "mobilenet-v1", 4)
    target = tmp_path / "results.txt"
    target.write_text("mine")
    capsys.readouterr()
    argv = [a.format(bundle=folder, data=data) for a in command]
    for out in (target, target / "sub"):
        assert main([*argv, "--out", str(out)]) == 2
        err = _last_error(capsys)
        assert err.startswith(f"edgezoo: error: --out {out}: ") and "is a file" in err, err
    assert target.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


def test_read_only_out_is_found_before_the_inference(tmpfs, capsys):
    read_only = tmpfs("ro", "1m", "ro")
    folder, data = bundle("mobilenet-v1", "tflite"), labelled_dataset("imagenet", "mobilenet-v1", 4)
    capsys.readouterr()
    assert main(["eval", str(folder), "--dataset", str(data), "--out", str(read_only / "evals")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"edgezoo: error: --out {read_only / 'evals'}: {read_only} is not writable "
                                        f"-- choose another --out folder"]  # no progress line: nothing ran


def test_eval_on_a_full_disk_names_a_folder_that_exists(tmpfs, capsys):
    disk = tmpfs("disk", "64k")
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # fill it up to the last block
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    folder, data = bundle("mobilenet-v1", "tflite"), labelled_dataset("imagenet", "mobilenet-v1", 4)
    capsys.readouterr()
    assert main(["eval", str(folder), "--dataset", str(data), "--out", str(disk / "evals")]) == 2
    err = _last_error(capsys)
    assert f"no space left on the device while writing the accuracy log in {disk} (" in err, err
    assert f"df -h {disk})" in err and sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_quantize_dot_writes_beside_the_float_bundle(tmp_path, capsys, monkeypatch):
    from tests.quantize.quant_helpers import photo_folder

    float_bundle = tmp_path / "mobilenet-v1" / "onnx"
    shutil.copytree(bundle("mobilenet-v1", "onnx"), float_bundle)
    before = _tree(float_bundle)
    photos = photo_folder()
    monkeypatch.chdir(float_bundle)
    capsys.readouterr()
    assert main(["quantize", ".", "--calibration", str(photos), "--frames", "2", "--out", "."]) == 2
    err = _last_error(capsys)
    assert "mobilenet-v1/tidl-preview: lies inside" in err and "a bundle edgezoo wrote" in err, err
    assert main(["quantize", ".", "--calibration", str(photos), "--frames", "2"]) == 0, capsys.readouterr().err
    assert _tree(float_bundle) == before  # nothing written inside it
    assert (tmp_path / "mobilenet-v1" / "tidl-preview" / "quantize.json").is_file()
    assert sorted(os.listdir(tmp_path / "mobilenet-v1")) == ["onnx", "tidl-preview"]


def test_a_symlinked_bundle_folder_is_never_swapped(tmp_path):
    """Renamed aside, a link would be 'replaced' and then never deleted (rmtree refuses links): refused instead."""
    from edgezoo.bundle.staging import BundleStaging
    from edgezoo.core.errors import EdgezooError

    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "notes.txt").write_text("mine")
    link = tmp_path / "out" / "model" / "onnx"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    with pytest.raises(EdgezooError, match=r"onnx: is a (symbolic )?link.*edgezoo replaces only folders"):
        with BundleStaging(link) as staging:
            staging.add_json("manifest.json", {"a": 1})
            staging.commit()
    assert link.is_symlink() and _tree(real) == {"notes.txt": b"mine"}
    assert sorted(p.name for p in link.parent.iterdir()) == ["onnx"]  # no staging, no .onnx.old-* left
