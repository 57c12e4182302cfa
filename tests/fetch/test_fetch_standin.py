"""The stand-in namespace, exercised with the 'tiny-bytes' builder and a tiny archive builder defined here."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from fetch_cards import file_entry, make_card
from loopback_server import sized

from edgezoo.cli import main
from edgezoo.core.errors import FetchError
from edgezoo.fetch import Source, cache_root, fetch_file, fetch_member, fetch_model, resolve_file
from edgezoo.fetch.standin import sidecar_path
from edgezoo.standins import StandinVariant, register

URL = "https://zenodo.example/files/model.onnx"


@register("fetch-test-tgz", version=3, description="a tgz with one member (fetch tests)")
def _build_test_tgz(dest: Path, variant: StandinVariant, seed: int) -> None:
    payload = np.random.default_rng(seed).integers(0, 256, 64 if variant is StandinVariant.REDUCED else 256,
                                                   dtype=np.uint8).tobytes()
    with tarfile.open(dest, "w:gz") as tf:
        info = tarfile.TarInfo("bundle/model.pb")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))


def _card():
    return make_card(file_entry("model.onnx", URL, standin="tiny-bytes"),
                     file_entry("bundle.tgz", "https://zenodo.example/files/bundle.tgz", archive="tgz",
                                members=["bundle/model.pb"], standin="fetch-test-tgz"),
                     file_entry("extra.bin", "https://zenodo.example/files/extra.bin"))


def test_standin_is_built_into_its_own_namespace_with_its_own_checksum():
    card = _card()
    full = resolve_file(card, "model.onnx", standin=True, offline=True)  # no network needed
    assert full.standin and full.source is Source.STANDIN_BUILT
    assert full.path == cache_root() / "standins" / "full" / "tiny-bytes-v1" / "model.onnx"
    assert full.size == 4096 and full.sha256 == hashlib.sha256(full.path.read_bytes()).hexdigest()
    record = json.loads(sidecar_path(full.path).read_text())
    assert record["sha256"] == full.sha256 and record["variant"] == "full" and record["seed"] == 0
    assert "STAND-IN" in record["note"]
    assert not (cache_root() / "published").exists()  # never mixed with published files

    reduced = resolve_file(card, "model.onnx", standin=True, variant=StandinVariant.REDUCED)
    assert reduced.path.parent.parent.name == "reduced" and reduced.size == 512

    again = resolve_file(card, "model.onnx", standin=True)
    assert again.source is Source.STANDIN_CACHE and again.sha256 == full.sha256


def test_corrupted_standin_cache_is_rebuilt(capsys):
    card = _card()
    path = fetch_file(card, "model.onnx", standin=True)
    good = path.read_bytes()
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    rebuilt = resolve_file(card, "model.onnx", standin=True)
    assert rebuilt.source is Source.STANDIN_BUILT and path.read_bytes() == good  # deterministic (fixed seed)
    assert "STAND-IN: fetch-test: cached model.onnx does not match its recorded sha256; rebuilding" in \
        capsys.readouterr().err

    sidecar_path(path).unlink()  # a stand-in without its record is not trusted either
    assert resolve_file(card, "model.onnx", standin=True).source is Source.STANDIN_BUILT


def test_published_and_standin_copies_of_one_file_do_not_mix(server):
    data = sized(4096, seed=11)
    card = make_card(file_entry("model.onnx", server.add("model.onnx", data), data, standin="tiny-bytes"))
    published = fetch_file(card, "model.onnx", progress=False)
    standin = fetch_file(card, "model.onnx", standin=True)
    assert published != standin and published.read_bytes() == data and standin.read_bytes() != data
    assert fetch_file(card, "model.onnx", offline=True).read_bytes() == data


def test_standin_archive_members_unpack_inside_the_standin_namespace():
    card = _card()
    member = fetch_member(card, "bundle.tgz", "bundle/model.pb", standin=True, variant="reduced")
    assert member.stat().st_size == 64
    assert cache_root() / "standins" / "reduced" / "fetch-test-tgz-v3" in member.parents


def test_fetch_model_takes_the_files_the_formats_use():
    card = _card()
    paths = fetch_model(card, standin=True)
    assert list(paths) == ["model.onnx"]  # only the onnx format's file; extra.bin is not used by any format


def test_a_file_without_a_builder_is_a_clear_error():
    card = _card()
    with pytest.raises(FetchError, match="extra.bin has no stand-in builder.*stand-ins exist for: model.onnx, "
                                         "bundle.tgz"):
        fetch_file(card, "extra.bin", standin=True)
    typo = make_card(file_entry("model.onnx", URL, standin="tiny-byte"))
    with pytest.raises(FetchError, match="fetch-test: model.onnx: no stand-in builder named 'tiny-byte'.*did you mean 'tiny-bytes'"):
        fetch_file(typo, "model.onnx", standin=True)


def test_cli_output_says_standin(in_zoo, capsys):
    in_zoo(_card())
    assert main(["fetch", "fetch-test", "--standin", "--standin-variant", "reduced",
                 "--file", "model.onnx", "--file", "bundle.tgz"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].startswith("STAND-IN: these files are stand-ins built by edgezoo")
    rows = lines[3:]
    assert [r.split()[1] for r in rows] == ["model.onnx", "bundle.tgz", "bundle.tgz::bundle/model.pb"]
    assert "STAND-IN (built)" in rows[0] and "STAND-IN (built)" in rows[1] and "STAND-IN (unpacked)" in rows[2]
    assert "STAND-IN: fetch-test: building model.onnx with tiny-bytes v1 (reduced)" in captured.err
    assert "STAND-IN: fetch-test: bundle.tgz: unpacking" in captured.err

    assert main(["fetch", "fetch-test", "--standin", "--file", "extra.bin"]) == 2
    assert "extra.bin has no stand-in builder" in capsys.readouterr().err
