"""Stalled and trickling servers are given up on within the retry policy's limits, which the user can tune.

Real downloads from the loopback server with tiny thresholds (fractions of a second, 1 KiB), so each test takes
about a second. The time bounds asserted are the policy's own limits plus generous slack for a loaded machine.
"""

from __future__ import annotations

import time

import pytest
from fetch_cards import file_entry, make_card
from loopback_server import sized

from edgezoo.cli import main
from edgezoo.core.errors import FetchError, NetworkError
from edgezoo.fetch import cache_root, fetch_file
from edgezoo.fetch.cache import part_path, published_path
from edgezoo.fetch.policy import RetryPolicy

DATA = sized(200_000, seed=3)
STALL_AT = 50_000
SLACK = 3.0  # seconds of scheduling noise allowed on a shared, busy 2-core machine


@pytest.fixture
def tiny(monkeypatch):
    """A 0.5 s window needing 1 KiB, and a given retry budget/attempts."""
    def apply(*, budget: float = 60, attempts: int = 50, window: float = 0.5) -> None:
        monkeypatch.setenv("EDGEZOO_FETCH_STALL_WINDOW", str(window))
        monkeypatch.setenv("EDGEZOO_FETCH_MIN_PROGRESS", "1024")
        monkeypatch.setenv("EDGEZOO_FETCH_RETRY_BUDGET", str(budget))
        monkeypatch.setenv("EDGEZOO_FETCH_ATTEMPTS", str(attempts))
    return apply


def test_a_trickling_server_is_given_up_on_and_the_error_says_how_long(server, in_zoo, tiny, capsys):
    tiny(attempts=2)
    # 20 bytes/s from byte 50,000 on: never silent for long, but far below 1 KiB per 0.5 s.
    url = server.add("model.onnx", DATA, stall_at=STALL_AT, trickle_every=0.05)
    in_zoo(make_card(file_entry("model.onnx", url, DATA)))
    t0 = time.monotonic()
    assert main(["fetch", "fetch-test"]) == 2
    took = time.monotonic() - t0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "failed after 2 attempts over " in line and "stalled: " in line and "less than the 1,024 required" in line
    waited = float(line.split("attempts over ")[1].split(" s")[0])
    assert 1.0 <= waited <= took  # two windows of 0.5 s at least, and no more than the command took
    assert took < 1.0 + SLACK
    assert len(server.files["model.onnx"].stalls) == 2
    part = part_path(published_path("fetch-test", "model.onnx"))
    assert STALL_AT <= part.stat().st_size < STALL_AT + 100  # the trickled bytes are kept for the resume
    assert part.read_bytes() == DATA[:part.stat().st_size]


def test_a_silent_server_is_given_up_on_within_the_retry_budget(server, tiny):
    tiny(budget=1.2, window=0.3)
    url = server.add("model.onnx", DATA, stall_at=STALL_AT)  # then nothing, connection kept open
    card = make_card(file_entry("model.onnx", url, DATA))
    t0 = time.monotonic()
    with pytest.raises(NetworkError) as info:
        fetch_file(card, "model.onnx", progress=False)
    took = time.monotonic() - t0
    text = str(info.value)
    assert "without progress" in text and "retry budget 1.2 s" in text
    waited = float(text.split("gave up after ")[1].split(" s")[0])
    assert 1.0 <= waited <= took  # the budget was used up (less at most one backoff delay) ...
    assert took < 1.2 + SLACK  # ... and not much more (the try under way is cut at the budget)
    requests = server.requests_for("model.onnx")
    assert 3 <= len(requests) <= 6  # 0.3 s windows + backoff in a 1.2 s budget: about 4 tries, not 50
    assert requests[1].range == f"bytes={STALL_AT}-"  # every retry resumes


def test_no_byte_at_all_is_the_read_timeout(server, tiny, monkeypatch):
    tiny(attempts=2, window=30)
    monkeypatch.setenv("EDGEZOO_FETCH_TIMEOUT", "0.3")
    url = server.add("model.onnx", DATA, stall_at=0)  # headers, then silence
    card = make_card(file_entry("model.onnx", url, DATA))
    with pytest.raises(NetworkError, match=r"failed after 2 attempts .*: no data for 0.3 s \(EDGEZOO_FETCH_TIMEOUT\)"):
        fetch_file(card, "model.onnx", progress=False)


def test_a_slow_but_steady_download_is_not_cut_by_the_budget(server, tiny):
    # 64 KiB every 0.15 s: 200 KB take about 0.5 s, longer than the 0.3 s budget, yet each window sees progress.
    tiny(budget=0.3, window=0.3, attempts=1)
    url = server.add("model.onnx", DATA, chunk_delay=0.15)
    card = make_card(file_entry("model.onnx", url, DATA))
    t0 = time.monotonic()
    assert fetch_file(card, "model.onnx", progress=False).read_bytes() == DATA
    assert time.monotonic() - t0 > 0.3  # it did outlast the budget
    assert len(server.requests_for("model.onnx")) == 1


@pytest.mark.parametrize("name, value", [
    ("EDGEZOO_FETCH_STALL_WINDOW", "abc"), ("EDGEZOO_FETCH_STALL_WINDOW", "-1"), ("EDGEZOO_FETCH_STALL_WINDOW", "0"),
    ("EDGEZOO_FETCH_RETRY_BUDGET", "nan"), ("EDGEZOO_FETCH_RETRY_BUDGET", "inf"),
    ("EDGEZOO_FETCH_MIN_PROGRESS", "1.5"), ("EDGEZOO_FETCH_MIN_PROGRESS", "0"),
    ("EDGEZOO_FETCH_ATTEMPTS", "0"), ("EDGEZOO_FETCH_ATTEMPTS", "1e9"), ("EDGEZOO_FETCH_TIMEOUT", "1e300"),
    ("EDGEZOO_FETCH_BACKOFF", "-0.5"), ("EDGEZOO_FETCH_MAX_BACKOFF", "x"),
])
def test_bad_policy_variables_are_one_line_exit_2_before_anything_is_written(server, in_zoo, capsys, monkeypatch,
                                                                             name, value):
    monkeypatch.setenv(name, value)
    in_zoo(make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA)))
    assert main(["fetch", "fetch-test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith(f"edgezoo: error: {name}={value!r} is ")
    assert f"-- {name} takes " in err[0] and "fix or unset it" in err[0]
    assert server.requests_for("model.onnx") == []
    assert not (cache_root() / "published" / "fetch-test").exists() or not any(
        (cache_root() / "published" / "fetch-test").iterdir())


def test_policy_defaults_and_direct_construction_are_checked_too():
    default = RetryPolicy()
    assert (default.stall_window, default.min_progress, default.retry_budget) == (30.0, 65536, 120.0)
    with pytest.raises(FetchError, match=r"RetryPolicy.min_progress=0.5 is not a whole number"):
        RetryPolicy(min_progress=0.5)
    with pytest.raises(FetchError, match=r"RetryPolicy.stall_window=nan is out of range"):
        RetryPolicy(stall_window=float("nan"))


def test_a_restart_from_byte_0_counts_as_progress(server, tiny):
    # A .part of 190,000 bytes, a server that ignores Range: the whole file comes again, 64 KiB per 0.2 s. Those
    # bytes are progress although the file offset stays below 190,000 for 0.4 s, longer than the 0.35 s window.
    tiny(window=0.35, attempts=1)
    url = server.add("model.onnx", DATA, ignore_range=True, chunk_delay=0.2)
    card = make_card(file_entry("model.onnx", url, DATA))
    part = part_path(published_path("fetch-test", "model.onnx"))
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:190_000])
    assert fetch_file(card, "model.onnx", progress=False).read_bytes() == DATA
    assert [(e.range, e.status) for e in server.requests_for("model.onnx")] == [("bytes=190000-", 200)]
