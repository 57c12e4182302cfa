"""Downloads through a real HTTP server on 127.0.0.1: verification, resume, retries, cache re-verification."""

from __future__ import annotations

import hashlib

import pytest
from fetch_cards import file_entry, make_card, md5
from loopback_server import sized

from edgezoo.cli import main
from edgezoo.core.errors import ChecksumMismatchError, NetworkError, SizeMismatchError
from edgezoo.fetch import Source, cache_root, fetch_file, resolve_file
from edgezoo.fetch.cache import part_path, published_path
from edgezoo.fetch.tofu import trust_path, trusted

DATA = sized(300_000)


def _cached_files() -> list[str]:
    root = cache_root() / "published"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_happy_path_downloads_verifies_and_caches(server):
    card = make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA))
    first = resolve_file(card, "model.onnx")
    assert first.source is Source.DOWNLOAD
    assert first.path == published_path("fetch-test", "model.onnx")
    assert first.path.read_bytes() == DATA
    assert first.sha256 == hashlib.sha256(DATA).hexdigest() and first.size == len(DATA)
    assert _cached_files() == ["model.onnx"]  # no .part left behind

    second = resolve_file(card, "model.onnx")  # re-verified, not downloaded again
    assert second.source is Source.CACHE and second.sha256 == first.sha256
    assert len(server.requests_for("model.onnx")) == 1


def test_md5_card_checksum_is_verified_and_sha256_reported(server):
    card = make_card(file_entry("m.pb", server.add("m.pb", DATA), size=len(DATA), checksum=md5(DATA)))
    fetched = resolve_file(card, "m.pb")
    assert fetched.sha256 == hashlib.sha256(DATA).hexdigest()


def test_checksum_mismatch_exits_2_and_keeps_nothing(server, in_zoo, capsys):
    bad = bytearray(DATA)
    bad[150_000] ^= 0xFF
    url = server.add("model.onnx", bytes(bad))
    in_zoo(make_card(file_entry("model.onnx", url, DATA)))
    assert main(["fetch", "fetch-test"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    err = err.strip().splitlines()[-1]  # progress lines come first; the error is one line
    assert err.startswith("edgezoo: error: fetch-test: model.onnx (from http://127.0.0.1")
    want, got = hashlib.sha256(DATA).hexdigest(), hashlib.sha256(bytes(bad)).hexdigest()
    assert f"expected sha256:{want}, got sha256:{got}" in err and "not kept" in err
    assert _cached_files() == []


def test_wrong_size_announced_by_the_server_is_refused_before_download(server):
    card = make_card(file_entry("model.onnx", server.add("model.onnx", DATA[:-10]), DATA))
    with pytest.raises(SizeMismatchError, match="expected 300,000 bytes, the server announces 299,990"):
        fetch_file(card, "model.onnx", progress=False)
    assert _cached_files() == []


def test_wrong_size_without_content_length_is_caught_while_streaming(server):
    longer = DATA + sized(2_000_000, seed=1)
    card = make_card(file_entry("model.onnx", server.add("model.onnx", longer, no_length=True), DATA))
    with pytest.raises(SizeMismatchError, match="expected 300,000 bytes, got more than that"):
        fetch_file(card, "model.onnx", progress=False)
    assert _cached_files() == []

    short = make_card(file_entry("short.onnx", server.add("short.onnx", DATA[:1000], no_length=True), DATA))
    with pytest.raises(SizeMismatchError, match="expected 300,000 bytes, got 1,000"):
        fetch_file(short, "short.onnx", progress=False)
    assert _cached_files() == []


def test_connection_dropped_halfway_is_resumed_with_range(server, capsys):
    url = server.add("model.onnx", DATA, drop_after=120_000)
    card = make_card(file_entry("model.onnx", url, DATA))
    path = fetch_file(card, "model.onnx")
    assert path.read_bytes() == DATA
    log = server.requests_for("model.onnx")
    assert [(e.range, e.status) for e in log] == [(None, 200), ("bytes=120000-", 206)]
    assert "connection dropped after 120,000 bytes" in capsys.readouterr().err


def test_server_ignoring_range_restarts_cleanly(server):
    url = server.add("model.onnx", DATA, drop_after=100_000, ignore_range=True)
    card = make_card(file_entry("model.onnx", url, DATA))
    assert fetch_file(card, "model.onnx", progress=False).read_bytes() == DATA
    assert [e.status for e in server.requests_for("model.onnx")] == [200, 200]


def test_5xx_then_success(server):
    url = server.add("model.onnx", DATA, fail_first=2, fail_status=503)
    card = make_card(file_entry("model.onnx", url, DATA))
    assert fetch_file(card, "model.onnx", progress=False).read_bytes() == DATA
    assert [e.status for e in server.requests_for("model.onnx")] == [503, 503, 200]


def test_network_failure_after_retries_is_one_line_and_the_part_is_resumed_later(server, in_zoo, capsys,
                                                                                   monkeypatch):
    monkeypatch.setenv("EDGEZOO_FETCH_ATTEMPTS", "2")
    url = server.add("model.onnx", DATA, drop_after=100_000, drop_times=2)
    card = make_card(file_entry("model.onnx", url, DATA))
    in_zoo(card)
    assert main(["fetch", "fetch-test"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    err = lines[-1]
    assert err.startswith("edgezoo: error: fetch-test: model.onnx (from http://127.0.0.1")
    # The progress line tells how far it got, never a "done" summary for a failed transfer.
    assert any(line.strip() == "model.onnx: interrupted after 0.1 MB" for line in lines)
    assert not any(" MB in " in line for line in lines)
    assert "failed after 2 attempts" in err
    part = part_path(published_path("fetch-test", "model.onnx"))
    assert part.stat().st_size == 100_000  # kept for a resume, never as the cached file itself
    assert not published_path("fetch-test", "model.onnx").exists()

    assert main(["fetch", "fetch-test"]) == 0  # the next run resumes where it stopped
    assert server.requests_for("model.onnx")[-1].range == "bytes=100000-"
    assert published_path("fetch-test", "model.onnx").read_bytes() == DATA and not part.exists()


def test_404_falls_back_to_the_cards_mirror(server):
    server.add("elsewhere/model.onnx", DATA)
    card = make_card(file_entry("model.onnx", server.url("missing/model.onnx"), DATA,
                                mirrors=[server.url("elsewhere/model.onnx")]))
    fetched = resolve_file(card, "model.onnx", progress=False)
    assert fetched.source is Source.DOWNLOAD and fetched.origin.endswith("/elsewhere/model.onnx")


def test_404_everywhere_is_a_network_error_naming_each_source(server):
    card = make_card(file_entry("model.onnx", server.url("a/model.onnx"), DATA, mirrors=[server.url("b/x")]))
    with pytest.raises(NetworkError, match=r"no source delivered the file: .*a/model.onnx: HTTP 404.*b/x: HTTP 404"):
        fetch_file(card, "model.onnx", progress=False)


def test_corrupt_cached_file_is_downloaded_again(server, capsys):
    card = make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA))
    path = fetch_file(card, "model.onnx", progress=False)
    with path.open("r+b") as fh:  # same size, one flipped byte: only the checksum can tell
        fh.seek(10)
        fh.write(bytes([DATA[10] ^ 1]))
    fetched = resolve_file(card, "model.onnx", progress=False)
    assert fetched.source is Source.DOWNLOAD and path.read_bytes() == DATA
    assert "cached copy failed verification (checksum mismatch" in capsys.readouterr().err


def test_mismatch_from_the_first_source_falls_back_but_is_reported_if_all_fail(server):
    bad = DATA[::-1]
    server.add("bad/model.onnx", bad)
    server.add("good/model.onnx", DATA)
    card = make_card(file_entry("model.onnx", server.url("bad/model.onnx"), DATA,
                                mirrors=[server.url("good/model.onnx")]))
    assert fetch_file(card, "model.onnx", progress=False).read_bytes() == DATA

    only_bad = make_card(file_entry("other.onnx", server.url("bad/model.onnx"), DATA,
                                    mirrors=[server.url("gone/model.onnx")]))
    with pytest.raises(ChecksumMismatchError, match="bad/model.onnx"):
        fetch_file(only_bad, "other.onnx", progress=False)


def test_a_stale_part_that_does_not_verify_is_discarded(server):
    card = make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA))
    part = part_path(published_path("fetch-test", "model.onnx"))
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * len(DATA))  # full size, wrong bytes (e.g. left by a crashed older version)
    assert fetch_file(card, "model.onnx", progress=False).read_bytes() == DATA
    assert [e.range for e in server.requests_for("model.onnx")] == [None] and not part.exists()

    part.write_bytes(DATA[:1000] + b"\0" * 1000)  # a wrong prefix: resumed, then caught by the checksum
    published_path("fetch-test", "model.onnx").unlink()
    with pytest.raises(ChecksumMismatchError):
        fetch_file(card, "model.onnx", progress=False)
    assert not part.exists()  # and the next try starts clean
    assert fetch_file(card, "model.onnx", progress=False).read_bytes() == DATA


# Trust on first use never records a body whose end is not proven. The card below has neither a
# size nor a checksum, and the server sends no Content-Length: the body ends when the connection closes.

def _tofu_card(url: str):
    return make_card(file_entry("model.onnx", url))  # size and checksum unknown


def test_a_close_delimited_body_cut_at_half_is_resumed_not_trusted(server):
    url = server.add("model.onnx", DATA, no_length=True, drop_after=150_000)
    fetched = resolve_file(_tofu_card(url), "model.onnx", progress=False)
    assert fetched.path.read_bytes() == DATA  # the rest was asked for and came
    assert trusted("fetch-test", "model.onnx").sha256 == hashlib.sha256(DATA).hexdigest()
    log = [(e.range, e.status) for e in server.requests_for("model.onnx")]
    assert log == [(None, 200), ("bytes=150000-", 206)]


def test_a_complete_close_delimited_body_is_confirmed_by_the_server(server):
    url = server.add("model.onnx", DATA, no_length=True)
    assert fetch_file(_tofu_card(url), "model.onnx", progress=False).read_bytes() == DATA
    log = [(e.range, e.status) for e in server.requests_for("model.onnx")]
    assert log == [(None, 200), ("bytes=300000-", 416)]  # "nothing after byte 300,000": that was the end


def test_a_server_without_lengths_or_ranges_must_send_the_same_bytes_twice(server):
    url = server.add("model.onnx", DATA, no_length=True, ignore_range=True, drop_after=150_000)
    assert fetch_file(_tofu_card(url), "model.onnx", progress=False).read_bytes() == DATA
    assert [e.status for e in server.requests_for("model.onnx")] == [200, 200, 200]  # cut, whole, whole again
    assert trusted("fetch-test", "model.onnx").size == len(DATA)


def test_a_server_that_keeps_cutting_the_body_gets_no_trust_and_no_cache_file(server, in_zoo, capsys, monkeypatch):
    monkeypatch.setenv("EDGEZOO_FETCH_ATTEMPTS", "3")
    url = server.add("model.onnx", DATA, no_length=True, drop_after=150_000, drop_times=99)
    in_zoo(_tofu_card(url))
    assert main(["fetch", "fetch-test"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "failed after 3 attempts" in last and "connection dropped after 150,000 bytes" in last
    assert "trusting it on first use" not in err and not trust_path().exists()
    assert not published_path("fetch-test", "model.onnx").exists()

    server.add("model.onnx", DATA, no_length=True)  # the server is fixed: the kept half is resumed and checked
    assert main(["fetch", "fetch-test"]) == 0
    assert published_path("fetch-test", "model.onnx").read_bytes() == DATA
    assert trusted("fetch-test", "model.onnx").sha256 == hashlib.sha256(DATA).hexdigest()
    assert server.requests_for("model.onnx")[-2].range == "bytes=150000-"


def test_without_range_support_bodies_that_keep_differing_are_refused(server, monkeypatch):
    monkeypatch.setenv("EDGEZOO_FETCH_ATTEMPTS", "2")
    url = server.add("model.onnx", DATA, no_length=True, ignore_range=True)
    served = server.files["model.onnx"]
    real_send = server._send

    def cut_differently(h, data, start, count, delay):  # answer n ends at byte 50,000 * n
        real_send(h, data, start, min(count, 50_000 * served.requests), delay)
    monkeypatch.setattr(server, "_send", cut_differently)
    with pytest.raises(NetworkError, match=r"failed after 2 attempts .*two downloads differ \(150,000 bytes"):
        fetch_file(_tofu_card(url), "model.onnx", progress=False)
    assert not trust_path().exists() and not published_path("fetch-test", "model.onnx").exists()


def test_a_chunked_body_proves_its_end_and_a_cut_one_is_resumed(server):
    whole = server.add("whole.onnx", DATA, chunked=True)
    assert fetch_file(_tofu_card(whole), "model.onnx", progress=False).read_bytes() == DATA
    assert [e.status for e in server.requests_for("whole.onnx")] == [200]  # the terminator: no need to ask

    cut = server.add("cut.onnx", DATA, chunked=True, drop_after=150_000)  # the chunks stop, no terminator
    card = make_card(file_entry("model.onnx", cut), card_id="cut-test")
    assert fetch_file(card, "model.onnx", progress=False).read_bytes() == DATA
    assert [(e.range, e.status) for e in server.requests_for("cut.onnx")] == [(None, 200), ("bytes=150000-", 206)]
    assert trusted("cut-test", "model.onnx").sha256 == hashlib.sha256(DATA).hexdigest()
