"""Trust on first use for files whose card checksum is 'unknown'."""

from __future__ import annotations

import hashlib
import json

import pytest
from fetch_cards import file_entry, make_card
from loopback_server import sized

from edgezoo.core.errors import ChecksumMismatchError
from edgezoo.fetch import Source, fetch_file, resolve_file
from edgezoo.fetch.cache import published_path
from edgezoo.fetch.tofu import trust_path, trusted

DATA = sized(50_000, seed=7)


def test_first_use_records_the_computed_sha256_and_says_so(server, capsys):
    card = make_card(file_entry("model.onnx", server.add("model.onnx", DATA)))  # checksum: unknown
    fetched = resolve_file(card, "model.onnx", progress=False)
    digest = hashlib.sha256(DATA).hexdigest()
    err = capsys.readouterr().err
    assert "has no published checksum; trusting it on first use" in err and f"sha256:{digest}" in err
    record = json.loads(trust_path().read_text())["fetch-test/model.onnx"]
    assert record["sha256"] == digest == fetched.sha256 and record["size"] == len(DATA)
    assert record["url"] == server.url("model.onnx")

    assert resolve_file(card, "model.onnx").source is Source.CACHE  # verified against the record now
    assert "trusting" not in capsys.readouterr().err  # said once only


def test_a_changed_file_is_detected_later(server):
    url = server.add("model.onnx", DATA)
    card = make_card(file_entry("model.onnx", url))
    path = fetch_file(card, "model.onnx", progress=False)

    path.write_bytes(DATA[:-1] + b"!")  # the cached copy is checked against the recorded hash
    assert resolve_file(card, "model.onnx", progress=False).source is Source.DOWNLOAD
    assert path.read_bytes() == DATA

    path.unlink()
    server.add("model.onnx", sized(50_000, seed=8))  # the publisher swapped the file under the same URL
    with pytest.raises(ChecksumMismatchError) as info:
        fetch_file(card, "model.onnx", progress=False)
    text = str(info.value)
    assert f"expected sha256:{hashlib.sha256(DATA).hexdigest()}" in text and "trusted on first use" in text
    assert "fetch-test/model.onnx" in text and str(trust_path()) in text  # how to accept the change
    assert not published_path("fetch-test", "model.onnx").exists()
    assert trusted("fetch-test", "model.onnx").sha256 == hashlib.sha256(DATA).hexdigest()  # record unchanged


def test_known_checksums_are_never_recorded(server):
    data = sized(1000)
    card = make_card(file_entry("model.onnx", server.add("model.onnx", data), data))
    fetch_file(card, "model.onnx", progress=False)
    assert not trust_path().exists()
