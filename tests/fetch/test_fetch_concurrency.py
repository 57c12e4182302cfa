"""Two real processes fetching the same file at once end with one verified copy and one download."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time

from fetch_cards import card_dict, file_entry
from loopback_server import sized

from edgezoo.fetch.cache import published_path

DATA = sized(1_000_000, seed=5)

SCRIPT = """
import json, sys
from edgezoo.fetch import resolve_file
from edgezoo.zoo.parse import parse_card
r = resolve_file(parse_card(json.loads(sys.argv[1])), "big.bin", progress=False)
print(json.dumps({"path": str(r.path), "source": r.source.value, "sha256": r.sha256}))
"""


def _start(card_json: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, card_json], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_processes_fetching_one_file_end_with_one_verified_copy(server):
    gate = threading.Event()  # the server holds the body until the second process is provably waiting
    card_json = json.dumps(card_dict(file_entry("big.bin", server.add("big.bin", DATA, gate=gate), DATA)))

    first = _start(card_json)
    _wait_for(lambda: server.requests_for("big.bin"))  # the first process is downloading (and holds the lock)
    second = _start(card_json)
    waiting = threading.Event()
    err_lines: list[str] = []

    def read_stderr() -> None:
        for line in second.stderr:
            err_lines.append(line)
            if "waiting for another edgezoo process working on big.bin" in line:
                waiting.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert waiting.wait(60), "".join(err_lines)
    finally:
        gate.set()
    out1, err1 = first.communicate(timeout=60)
    out2 = second.stdout.read()
    second.wait(timeout=60)
    reader.join(timeout=10)
    assert first.returncode == 0, err1
    assert second.returncode == 0, "".join(err_lines)

    r1, r2 = json.loads(out1), json.loads(out2)
    assert (r1["source"], r2["source"]) == ("download", "cache")  # the second one re-verified the first's copy
    assert r1["path"] == r2["path"] == str(published_path("fetch-test", "big.bin"))
    assert r1["sha256"] == r2["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert len(server.requests_for("big.bin")) == 1  # downloaded once
    folder = published_path("fetch-test", "big.bin").parent
    assert [p.name for p in folder.iterdir()] == ["big.bin"]  # one copy, no .part or temp files
