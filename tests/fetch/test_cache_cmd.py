"""`edgezoo cache list|verify|clean|untrust`, run through the real CLI on caches filled by the real fetch code,
and the stale-leftover rule shared with the stand-in path (killed runs are real killed processes)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from fetch_cards import card_dict, file_entry, make_card
from loopback_server import sized

from edgezoo.cli import main
from edgezoo.core.errors import NetworkError
from edgezoo.fetch import cache_root, fetch_file, fetch_member
from edgezoo.fetch.cache import locked, published_path, try_locked
from edgezoo.fetch.tofu import forget, trust_path, trusted
from edgezoo.standins import register

MODEL = sized(20_000, seed=1)  # card checksum known
LABELS = sized(3_000, seed=2)  # checksum unknown: trusted on first use
WEIGHTS = sized(200_000, seed=3)  # its download is cut short: a .part stays


def _tgz(member: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


BUNDLE = _tgz("bundle/model.pb", sized(5_000, seed=4))


@register("cache-test-bytes", version=2, description="deterministic bytes (cache command tests)")
def _build_bytes(dest: Path, variant, seed: int) -> None:
    dest.write_bytes(sized(3_000, seed))


def _files(server) -> list[dict]:
    return [file_entry("model.onnx", server.add("model.onnx", MODEL), MODEL, standin="cache-test-bytes"),
            file_entry("labels.txt", server.add("labels.txt", LABELS)),
            file_entry("bundle.tgz", server.add("bundle.tgz", BUNDLE), BUNDLE, archive="tgz",
                       members=["bundle/model.pb"]),
            file_entry("weights.bin", server.add("weights.bin", WEIGHTS, drop_after=50_000, drop_times=99), WEIGHTS)]


def _fill(server, monkeypatch, in_zoo):
    """A cache with one of everything, made by the real fetch code: published files (card checksum, first use),
    an unpacked archive, a stand-in and a partial download."""
    card = make_card(*_files(server))
    in_zoo(card)
    fetch_file(card, "model.onnx", progress=False)
    fetch_file(card, "labels.txt", progress=False)
    fetch_member(card, "bundle.tgz", "bundle/model.pb", progress=False)
    fetch_file(card, "model.onnx", standin=True)
    monkeypatch.setenv("EDGEZOO_FETCH_ATTEMPTS", "1")
    with pytest.raises(NetworkError):
        fetch_file(card, "weights.bin", progress=False)
    return card


def _disk_bytes(*paths: Path) -> int:
    """Bytes on disk below `paths`, counted here independently of the code under test."""
    total = 0
    for p in paths:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        total += sum(f.stat().st_size for f in files)
    return total


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["cache", *argv])
    except SystemExit as exc:  # argparse's errors, which the cache parsers print as one line
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_every_entry_with_its_size_and_trust_state(server, monkeypatch, in_zoo, capsys):
    _fill(server, monkeypatch, in_zoo)
    folder = cache_root() / "published" / "fetch-test"
    standin = cache_root() / "standins" / "full" / "cache-test-bytes-v2" / "model.onnx"
    code, out, _ = _cli(capsys, "list", "--json")
    assert code == 0
    listing = json.loads(out)
    entries = {(e["kind"], Path(e["path"]).name): e for e in listing["entries"]}
    assert set(entries) == {("published", "model.onnx"), ("published", "labels.txt"), ("published", "bundle.tgz"),
                            ("unpacked", "bundle.tgz.unpacked"), ("stand-in", "model.onnx"),
                            ("partial", "weights.bin.part")}
    assert entries["published", "model.onnx"]["bytes"] == len(MODEL)
    assert entries["published", "model.onnx"]["trust"] == "card checksum"
    recorded = json.loads(trust_path().read_text())["fetch-test/labels.txt"]["recorded"]
    assert entries["published", "labels.txt"]["trust"] == "trusted on first use"
    assert entries["published", "labels.txt"]["recorded"] == recorded
    assert entries["unpacked", "bundle.tgz.unpacked"]["bytes"] == _disk_bytes(folder / "bundle.tgz.unpacked",
                                                                              folder / "bundle.tgz.unpacked.json")
    assert entries["stand-in", "model.onnx"]["bytes"] == _disk_bytes(standin, standin.with_name("model.onnx.sha256.json"))
    assert entries["stand-in", "model.onnx"]["models"] == ["fetch-test"]
    part = entries["partial", "weights.bin.part"]
    assert part["bytes"] == (folder / "weights.bin.part").stat().st_size > 0 and not part["in_use"]
    assert listing["total_bytes"] == _disk_bytes(cache_root() / "published", cache_root() / "standins")

    forget("fetch-test", "labels.txt")
    code, out, _ = _cli(capsys, "list")
    assert code == 0
    rows = {line.split()[-1]: line for line in out.splitlines()[2:-1]}
    assert "no record" in rows["published/fetch-test/labels.txt"]
    assert "card checksum" in rows["published/fetch-test/model.onnx"]
    assert "partial download, resumed by the next fetch" in rows["published/fetch-test/weights.bin.part"]
    assert out.splitlines()[-1] == f"total: 6 entries, {listing['total_bytes']:,} bytes in {cache_root()}"

    assert _cli(capsys, "list", "fetch-test")[1] == out  # a model filter that keeps everything


def test_verify_rehashes_against_the_card_or_the_first_use_record(server, monkeypatch, in_zoo, capsys):
    _fill(server, monkeypatch, in_zoo)
    monkeypatch.setattr("edgezoo.fetch.cache_admin.PROGRESS_FROM_BYTES", 1)  # show progress for tiny files
    code, out, err = _cli(capsys, "verify")
    assert code == 0
    assert "verifying model.onnx:" in err  # progress on stderr
    results = {line.split()[1]: line.split()[3] for line in out.splitlines()[2:-1]}
    assert results == {"bundle.tgz": "ok", "labels.txt": "ok", "model.onnx": "ok"}

    path = published_path("fetch-test", "model.onnx")
    path.write_bytes(MODEL[:-1] + bytes([MODEL[-1] ^ 1]))  # same size, one bit flipped
    forget("fetch-test", "labels.txt")
    code, out, err = _cli(capsys, "verify", "fetch-test")
    assert code == 1
    assert err.count("edgezoo: error:") == 1  # after the progress lines, one line
    assert err.splitlines()[-1].startswith("edgezoo: error: 1 cached file(s) failed verification: "
                                           "fetch-test/model.onnx -- 'edgezoo fetch MODEL' replaces a corrupt copy")
    rows = {line.split()[1]: line for line in out.splitlines()[2:-1]}
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    assert "mismatch" in rows["model.onnx"] and got in rows["model.onnx"]
    assert "missing record" in rows["labels.txt"]
    assert out.splitlines()[-1] == "3 files: 1 ok, 1 mismatch, 1 missing record"

    fetch_file(make_card(*_files(server)), "model.onnx", progress=False)  # the fetch replaces the corrupt copy
    assert _cli(capsys, "verify")[0] == 0


def test_clean_model_removes_its_entries_and_keeps_other_models_and_trust_records(server, monkeypatch, in_zoo,
                                                                                   capsys):
    card = _fill(server, monkeypatch, in_zoo)
    other = make_card(file_entry("other.bin", server.add("other.bin", LABELS)), card_id="other-test")
    in_zoo(card, other)
    fetch_file(other, "other.bin", progress=False)
    mine = [cache_root() / "published" / "fetch-test", cache_root() / "standins"]
    expected = _disk_bytes(*mine)

    code, out, _ = _cli(capsys, "clean", "fetch-test")
    assert code == 0
    assert f"removing 6 entries of fetch-test, {expected:,} bytes, from {cache_root()}" in out
    assert f"removed 6, {expected:,} bytes freed" in out
    assert "first-use records were kept" in out
    assert _disk_bytes(*mine) == 0
    assert published_path("other-test", "other.bin").read_bytes() == LABELS
    assert trusted("fetch-test", "labels.txt").sha256 == hashlib.sha256(LABELS).hexdigest()

    in_zoo(card)  # other-test left the zoo: its cached file can still be listed and cleaned by its id
    code, out, _ = _cli(capsys, "list", "other-test")
    assert code == 0 and "not in the zoo" in out.splitlines()[2]
    code, out, _ = _cli(capsys, "clean", "other-test")
    assert code == 0 and "removed 1," in out and not published_path("other-test", "other.bin").exists()
    assert _cli(capsys, "list")[1] == f"nothing cached in {cache_root()}\n"


def test_clean_stale_removes_only_leftovers_nobody_owns(server, monkeypatch, in_zoo, capsys):
    _fill(server, monkeypatch, in_zoo)
    folder = cache_root() / "published" / "fetch-test"
    standins = cache_root() / "standins" / "full"
    current = standins / "cache-test-bytes-v2"
    shutil.copytree(current, standins / "cache-test-bytes-v1")  # what the previous builder version left
    shutil.copytree(current, standins / "retired-builder-v1")  # a builder edgezoo no longer has
    shutil.copytree(folder / "bundle.tgz.unpacked", folder / ".bundle.tgz.unpacked.k3j_9xq2.tmp")  # killed unpack
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (cache_root() / f".trust.json.{int(dead.stdout)}.tmp").write_text("{}")  # its writer died
    (cache_root() / f".trust.json.{os.getpid()}.tmp").write_text("{}")  # its writer (this process) is alive
    shutil.copy(folder / "bundle.tgz", folder / "gone.tgz")
    fetch_member(make_card(file_entry("gone.tgz", "https://x.example/gone.tgz", BUNDLE, archive="tgz"),
                           card_id="fetch-test"), "gone.tgz", "bundle/model.pb", offline=True)
    (folder / "gone.tgz").unlink()  # its unpacked folder is now an orphan
    stale = [standins / "cache-test-bytes-v1" / "model.onnx", standins / "retired-builder-v1" / "model.onnx",
             folder / ".bundle.tgz.unpacked.k3j_9xq2.tmp", cache_root() / f".trust.json.{int(dead.stdout)}.tmp",
             folder / "gone.tgz.unpacked", folder / "weights.bin.part"]
    stale_files = {f for p in stale for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()}
    stale_files |= {p.with_name("model.onnx.sha256.json") for p in stale[:2]} | {folder / "gone.tgz.unpacked.json"}
    expected = sum(f.stat().st_size for f in stale_files)
    before = {p for p in cache_root().rglob("*") if p.is_file()}

    code, out, _ = _cli(capsys, "clean", "--stale")
    assert code == 0
    assert f"removing 6 stale leftovers, {expected:,} bytes" in out and f"removed 6, {expected:,} bytes freed" in out
    assert "older builder version (now v2)" in out and "builder 'retired-builder' no longer exists" in out
    assert "its archive is gone" in out and "left by an interrupted run" in out
    assert before - {p for p in cache_root().rglob("*") if p.is_file()} == stale_files  # those, and only those
    assert (cache_root() / f".trust.json.{os.getpid()}.tmp").exists()  # owned by a live process
    assert (current / "model.onnx").exists() and (folder / "bundle.tgz.unpacked" / "bundle" / "model.pb").exists()
    assert _cli(capsys, "clean", "--stale")[1] == f"no stale leftovers to remove in {cache_root()}\n"


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


FETCH = """
import json, sys
from edgezoo.fetch import fetch_file
from edgezoo.zoo.parse import parse_card
fetch_file(parse_card(json.loads(sys.argv[1])), "weights.bin", progress=False)
"""


def test_clean_never_removes_what_a_running_fetch_is_writing(server, capsys):
    gate = threading.Event()  # the server holds the body: the fetch sits in its download, lock held
    card_json = json.dumps(card_dict(file_entry("weights.bin", server.add("weights.bin", WEIGHTS, gate=gate),
                                                WEIGHTS)))
    part = published_path("fetch-test", "weights.bin").with_name("weights.bin.part")
    proc = subprocess.Popen([sys.executable, "-c", FETCH, card_json], stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(part.exists, "the download to start")
        code, out, _ = _cli(capsys, "list")
        assert code == 0 and "partial download, being downloaded" in out
        assert _cli(capsys, "clean", "--stale")[1] == f"no stale leftovers to remove in {cache_root()}\n"
        code, out, _ = _cli(capsys, "clean")
        assert code == 0 and "removed 0, 0 bytes freed" in out
        assert "kept published/fetch-test/weights.bin.part: a running edgezoo process is using it" in out
        assert part.exists()
    finally:
        gate.set()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert published_path("fetch-test", "weights.bin").read_bytes() == WEIGHTS


BUILD_AND_HANG = """
import json, sys, time
from edgezoo.fetch import fetch_file
from edgezoo.standins import register
from edgezoo.zoo.parse import parse_card

@register("cache-test-bytes", version=2)
def build(dest, variant, seed):
    dest.write_bytes(HALF)
    print("building", flush=True)
    time.sleep(120)

HALF = b"half a stand-in"
fetch_file(parse_card(json.loads(sys.argv[1])), "model.onnx", standin=True)
"""
HALF = b"half a stand-in"


def test_a_killed_standin_build_is_kept_while_alive_and_swept_by_the_next_run(in_zoo, capsys):
    card = card_dict(file_entry("model.onnx", "https://x.example/model.onnx", standin="cache-test-bytes"))
    in_zoo(make_card(*card["files"]))
    proc = subprocess.Popen([sys.executable, "-c", BUILD_AND_HANG, json.dumps(card)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "building\n", proc.stderr.read()
        folder = cache_root() / "standins" / "full" / "cache-test-bytes-v2"
        leftovers = [p for p in folder.iterdir() if p.name.endswith(".build")]
        assert len(leftovers) == 1 and leftovers[0].name.startswith(".model.onnx.")
        assert "work folder of a running edgezoo process" in _cli(capsys, "list")[1]
        assert _cli(capsys, "clean", "--stale")[1] == f"no stale leftovers to remove in {cache_root()}\n"
        assert leftovers[0].is_dir()  # the build is alive: its folder stays
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert leftovers[0].is_dir() and (leftovers[0] / "model.onnx").read_bytes() == HALF  # as kill -9 left it

    assert main(["fetch", "fetch-test", "--standin"]) == 0
    err = capsys.readouterr().err
    assert f"removed {leftovers[0].name} in {folder}, left by an interrupted run ({len(HALF)} bytes)" in err
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "model.onnx.sha256.json"]
    assert (folder / "model.onnx").read_bytes() == sized(3_000, 0)


def test_untrust_forgets_the_record_and_the_copy_so_the_next_fetch_records_afresh(server, in_zoo, capsys):
    card = make_card(file_entry("labels.txt", server.add("labels.txt", LABELS)))
    in_zoo(card)
    assert main(["fetch", "fetch-test"]) == 0
    server.add("labels.txt", sized(3_000, seed=9))  # the publisher changed the file
    published_path("fetch-test", "labels.txt").unlink()
    assert main(["fetch", "fetch-test"]) == 2
    err = capsys.readouterr().err
    assert "run 'edgezoo cache untrust fetch-test/labels.txt'" in err

    published_path("fetch-test", "labels.txt").write_bytes(LABELS)  # an old copy, to be removed with the record
    code, out, _ = _cli(capsys, "untrust", "labels.txt")  # the file name alone is unambiguous
    assert code == 0
    old = hashlib.sha256(LABELS).hexdigest()
    assert out.splitlines()[0].startswith(f"forgot the first-use record fetch-test/labels.txt (sha256:{old}, 3,000")
    assert f"removed the cached copy (3,000 bytes): {published_path('fetch-test', 'labels.txt')}" in out
    assert trusted("fetch-test", "labels.txt") is None and not published_path("fetch-test", "labels.txt").exists()

    assert main(["fetch", "fetch-test"]) == 0
    assert trusted("fetch-test", "labels.txt").sha256 == hashlib.sha256(sized(3_000, seed=9)).hexdigest()


def test_untrust_refuses_unknown_and_ambiguous_records_and_files_in_use(server, in_zoo, capsys):
    a = make_card(file_entry("labels.txt", server.add("labels.txt", LABELS)))
    b = make_card(file_entry("labels.txt", server.add("labels.txt", LABELS)), card_id="other-test")
    in_zoo(a, b)
    fetch_file(a, "labels.txt", progress=False)
    fetch_file(b, "labels.txt", progress=False)
    before = trust_path().read_text()
    capsys.readouterr()

    code, _, err = _cli(capsys, "untrust", "labels.txt")
    assert code == 2 and err.count("\n") == 1
    assert "'labels.txt' names 2 trust-on-first-use records: fetch-test/labels.txt, other-test/labels.txt" in err
    code, _, err = _cli(capsys, "untrust", "fetch-test/label.txt")
    assert code == 2 and err.count("\n") == 1 and "did you mean 'fetch-test/labels.txt'" in err
    assert "Records: fetch-test/labels.txt, other-test/labels.txt" in err
    with locked(published_path("fetch-test", "labels.txt")):  # as a running fetch of that file holds it
        code, _, err = _cli(capsys, "untrust", "fetch-test/labels.txt")
    assert code == 2 and "in use by another edgezoo process; nothing was changed" in err
    assert trust_path().read_text() == before and published_path("fetch-test", "labels.txt").exists()


@pytest.mark.parametrize("argv, message", [
    (["lst"], "edgezoo: error: cache: argument ACTION: invalid choice: 'lst' (choose from 'list', 'verify', "
              "'clean', 'untrust') -- see 'edgezoo cache --help'"),
    ([], "edgezoo: error: cache: the following arguments are required: ACTION"),
    (["clean", "mobilnet"], "unknown model 'mobilnet' -- did you mean"),
    (["clean", "--stale", "mobilnet"], "unknown model 'mobilnet' -- did you mean"),  # options before MODEL
    (["untrust"], "edgezoo: error: cache untrust: the following arguments are required: MODEL/FILE_NAME -- see "
                  "'edgezoo cache untrust --help'"),
    (["untrust", "x.bin"], "no trust-on-first-use record named 'x.bin': there are no records"),
])
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err and "Traceback" not in err


def test_an_option_of_another_action_is_refused_by_argparse(capsys):
    assert _cli(capsys, "verify", "--json")[0] == 2  # like any unknown option of any command
    assert _cli(capsys, "list", "--stale")[0] == 2


def test_try_locked_reports_a_lock_held_by_this_process_as_taken():
    target = cache_root() / "x.bin"
    with try_locked(target) as free:
        assert free
    with locked(target):
        with try_locked(target) as free:
            assert not free
