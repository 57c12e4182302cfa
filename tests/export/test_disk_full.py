"""A full disk outside the download code: building a stand-in, writing a bundle (the model, the YAML files), and
the CLI's last safety net. Always one line, exit 2, naming the folder; nothing half-written is left.

The real cases run on small tmpfs mounts (root only: skipped with the reason otherwise); the injected ENOSPC cases
always run."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path
from types import MappingProxyType

import pytest

from edgezoo import zoo
from edgezoo.cli import main
from edgezoo.core.errors import DiskFullError
from edgezoo.export.api import export_model
from edgezoo.fetch.standin import get_standin
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.standins import StandinVariant
from edgezoo.standins import register as register_standin
from edgezoo.zoo.schema import RecipeSpec, Target

PAGE = 4096
EXPORT = ["export", "resnet50", "--to", "tflite", "--standin", "--standin-variant", "reduced", "--offline"]


@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, size) -> a fresh tmpfs of that size under tmp_path, unmounted afterwards."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                                  capture_output=True, text=True)
            reason = done.stderr.strip() or f"exit {done.returncode}"
        except OSError as exc:
            done, reason = None, str(exc)
        if done is None or done.returncode:
            pytest.skip(f"cannot mount a {size} tmpfs for a real full disk ({reason}): needs root or CAP_SYS_ADMIN")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _one_line_disk_full(err: str, folder: Path) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "no space left on the device" in err and str(folder) in err, err


def _everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_standin_build_on_a_full_cache(tmpfs, monkeypatch, capsys):
    cache = tmpfs("cache", "3m")
    monkeypatch.setenv("EDGEZOO_CACHE", str(cache))
    code = main(["fetch", "ssd-resnet34", "--standin", "--standin-variant", "reduced"])
    err = capsys.readouterr().err.splitlines(keepends=True)[-1]  # after the "building ..." progress line
    assert code == 2
    from edgezoo.standins import get_builder

    folder = cache / "standins" / "reduced" / f"ssd-resnet34-onnx-v{get_builder('ssd-resnet34-onnx').version}"
    _one_line_disk_full(err, folder)
    assert "building the stand-in resnet34-ssd1200.onnx" in err
    assert list(folder.iterdir()) == []  # no half-built file, no build folder


def test_standin_build_with_a_full_temp_folder_names_the_temp_folder(tmpfs, monkeypatch, capsys):
    scratch = tmpfs("tmp", "64k")  # the ONNX stand-in's builder writes its intermediate frozen graph there
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches its first answer
    code = main(["fetch", "resnet50", "--standin", "--standin-variant", "reduced"])
    err = capsys.readouterr().err.splitlines(keepends=True)[-1]
    assert code == 2
    _one_line_disk_full(err, scratch)
    assert "building the stand-in resnet50_v1_opset11.onnx" in err and "standins" not in err


def test_export_model_does_not_fit_the_out_folder(tmpfs, capsys):
    out = tmpfs("out", "1m")  # the reduced ResNet50 TFLite is ~1.5 MB
    code = main([*EXPORT, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    _one_line_disk_full(err.splitlines(keepends=True)[-1], out)
    assert _everything_under(out) == []


def test_export_yaml_files_do_not_fit_and_the_previous_bundle_stands(tmpfs, capsys):
    out = tmpfs("out", "4m")
    assert main([*EXPORT, "--out", str(out)]) == 0
    bundle = out / "resnet50-v1.5" / "tflite"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in bundle.iterdir()}
    # Leave room for exactly the model (same seed, same bytes): the next export fails after it, on the YAML files.
    model_pages = -(-(bundle / "model.tflite").stat().st_size // PAGE) * PAGE
    fs = os.statvfs(out)
    (out / "filler").write_bytes(bytes(fs.f_bavail * fs.f_frsize - model_pages))
    capsys.readouterr()

    code = main([*EXPORT, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    _one_line_disk_full(err.splitlines(keepends=True)[-1], out / "resnet50-v1.5")
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in bundle.iterdir()} == before
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["tflite"]  # staging removed


@register("test-disk-full-midway", summary="test recipe: the disk fills while it writes")
def _fills_the_disk(rin: RecipeInput) -> RecipeOutput:
    (rin.workdir / "model.tflite").write_bytes(b"half")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what write() raises: no file name


@register("test-disk-full-elsewhere", summary="test recipe: another disk fills")
def _fills_another_disk(rin: RecipeInput) -> RecipeOutput:
    raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/scratch/converter/tmp1234.bin")


def _card(recipe: str):
    card = zoo.get_card("resnet50")
    return dataclasses.replace(card, recipes=MappingProxyType({Target.TFLITE: RecipeSpec(recipe, {})}))


def test_injected_disk_full_while_writing_the_bundle(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DiskFullError) as caught:
        export_model(_card("test-disk-full-midway"), "tflite", out_dir=out, standin=True)
    message = str(caught.value)
    assert "writing the bundle in" in message and f"df -h {out}" in message  # the created model folder is gone
    assert "\n" not in message and caught.value.exit_code == 2
    assert _everything_under(out) == []


def test_injected_disk_full_elsewhere_names_that_folder(tmp_path):
    with pytest.raises(DiskFullError, match="in /scratch/converter "):
        export_model(_card("test-disk-full-elsewhere"), "tflite", out_dir=tmp_path / "out", standin=True)
    assert not (tmp_path / "out").exists()


@register_standin("test-disk-full-builder")
def _builder_fills_the_disk(dest: Path, variant: StandinVariant, seed: int) -> None:
    dest.write_bytes(b"part of a stand-in")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_injected_disk_full_while_building_a_standin():
    card = zoo.get_card("resnet50")
    first = dataclasses.replace(card.files[0], standin="test-disk-full-builder")
    card = dataclasses.replace(card, files=(first, *card.files[1:]))
    with pytest.raises(DiskFullError, match=f"building the stand-in {first.name} in .*test-disk-full-builder-v1"):
        get_standin(card, first.name, StandinVariant.REDUCED)
    from edgezoo.fetch.cache import standin_dir

    assert list(standin_dir("test-disk-full-builder", 1, StandinVariant.REDUCED).iterdir()) == []


def test_cli_turns_any_escaping_disk_full_into_one_line(monkeypatch, capsys):
    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/var/lib/somewhere/file.json")

    monkeypatch.setattr(zoo, "all_cards", full)  # `edgezoo list` reads the zoo through it
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    _one_line_disk_full(err, Path("/var/lib/somewhere"))
