"""--offline and --mirror (a local folder or a base URL), through the API and the CLI."""

from __future__ import annotations

import hashlib

import pytest
from fetch_cards import file_entry, make_card
from loopback_server import sized

from edgezoo.cli import main
from edgezoo.core.errors import ChecksumMismatchError, MirrorError, OfflineMissError
from edgezoo.fetch import Source, fetch_file, resolve_file
from edgezoo.fetch.cache import published_path

DATA = sized(200_000, seed=3)
URL = "https://zenodo.example/record/1/files/published%20name.onnx"


def test_offline_miss_names_the_url_and_the_expected_checksum(in_zoo, capsys):
    in_zoo(make_card(file_entry("model.onnx", URL, DATA)))
    assert main(["fetch", "fetch-test", "--offline"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert URL in err and f"sha256:{hashlib.sha256(DATA).hexdigest()}" in err and "200,000 bytes" in err
    assert "--mirror DIR" in err


def test_offline_miss_with_unknown_checksum_says_so():
    card = make_card(file_entry("model.onnx", URL))
    with pytest.raises(OfflineMissError, match="expected unknown \\(no published checksum\\)"):
        fetch_file(card, "model.onnx", offline=True)


def test_offline_uses_a_verified_cache_and_refuses_a_corrupt_one(server):
    card = make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA))
    path = fetch_file(card, "model.onnx", progress=False)
    assert resolve_file(card, "model.onnx", offline=True).source is Source.CACHE
    path.write_bytes(DATA[:-1] + b"\x00")
    with pytest.raises(OfflineMissError, match="cached copy failed verification \\(checksum mismatch"):
        fetch_file(card, "model.onnx", offline=True)
    assert not path.exists()  # the corrupt copy is not kept either


def test_local_folder_mirror_by_card_name_and_by_url_basename(tmp_path, in_zoo, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "model.onnx").write_bytes(DATA)
    other = sized(1000, seed=4)
    (mirror / "published name.onnx").write_bytes(other)  # found by the URL's basename
    card = make_card(file_entry("model.onnx", URL, DATA), file_entry("second.onnx", URL, other))
    first = resolve_file(card, "model.onnx", mirror=mirror, offline=True)  # a folder needs no network
    assert first.source is Source.MIRROR and first.path.read_bytes() == DATA
    assert first.path == published_path("fetch-test", "model.onnx")
    second = resolve_file(card, "second.onnx", mirror=str(mirror))
    assert second.source is Source.MIRROR and second.origin.endswith("published name.onnx")

    in_zoo(card)  # and through the CLI: now both are cache hits
    assert main(["fetch", "fetch-test", "--file", "model.onnx", "--file", "second.onnx", "--mirror", str(mirror),
                 "--offline"]) == 0
    out = capsys.readouterr().out
    assert out.count(" cache ") == 2


def test_local_mirror_with_a_bad_copy_is_a_checksum_error(tmp_path):
    (tmp_path / "model.onnx").write_bytes(DATA[::-1])
    card = make_card(file_entry("model.onnx", URL, DATA))
    with pytest.raises(ChecksumMismatchError, match="from mirror"):
        fetch_file(card, "model.onnx", mirror=tmp_path, progress=False)
    assert not published_path("fetch-test", "model.onnx").exists()


def test_url_mirror(server):
    server.add("mirror/model.onnx", DATA)
    card = make_card(file_entry("model.onnx", URL, DATA))
    fetched = resolve_file(card, "model.onnx", mirror=server.url("mirror") + "/", progress=False)
    assert fetched.source is Source.MIRROR and fetched.path.read_bytes() == DATA
    assert fetched.origin == server.url("mirror/model.onnx")


def test_url_mirror_tries_the_url_basename_then_fails_clearly(server):
    card = make_card(file_entry("model.onnx", URL, DATA))
    with pytest.raises(MirrorError, match="has no file named 'model.onnx' or 'published name.onnx'"):
        fetch_file(card, "model.onnx", mirror=server.url("empty"), progress=False)
    assert [e.path for e in server.log] == ["empty/model.onnx", "empty/published name.onnx"]


def test_bad_mirror_arguments(tmp_path, in_zoo, capsys):
    in_zoo(make_card(file_entry("model.onnx", URL, DATA)))
    assert main(["fetch", "fetch-test", "--mirror", str(tmp_path / "nope")]) == 2
    assert "mirror folder" in capsys.readouterr().err
    assert main(["fetch", "fetch-test", "--mirror", "ftp://host/x"]) == 2
    assert "unsupported scheme 'ftp'" in capsys.readouterr().err
    assert main(["fetch", "fetch-test", "--mirror", "http://127.0.0.1:9/m", "--offline"]) == 2
    assert "--offline forbids the network" in capsys.readouterr().err
