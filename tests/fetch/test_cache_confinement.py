"""Links in the cache never lead edgezoo out of it: nothing outside the cache root is listed, removed or written,
whether the link is a namespace folder (published/, standins/), a card or builder folder, .locks/, a `.part` or a
temp file. Real links, real files, the real CLI (and a real process for `cache clean`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fetch_cards import file_entry, make_card
from loopback_server import sized

import edgezoo
from edgezoo.cli import main
from edgezoo.fetch.cache import cache_root, part_path
from edgezoo.fetch.tofu import trust_path
from edgezoo.standins import register

DATA = sized(300_000, seed=7)


@register("confinement-bytes", version=1, description="deterministic bytes (cache confinement tests)")
def _build(dest: Path, variant, seed: int) -> None:
    dest.write_bytes(sized(2_000, seed))


def _users_folder(tmp_path: Path) -> tuple[Path, dict[Path, bytes]]:
    """A folder of the user's own files, shaped like a cache namespace (card folders holding files)."""
    notes = tmp_path / "notes"
    files = {notes / "fetch-test" / "model.onnx": b"my model", notes / "diary" / "2026.txt": b"dear diary",
             notes / "reduced" / "confinement-bytes-v1" / "keep.txt": b"keep me"}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return notes, files


def _intact(files: dict[Path, bytes]) -> bool:
    return all(path.read_bytes() == data for path, data in files.items())


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("namespace", ["published", "standins"])
def test_cache_clean_never_follows_a_symlinked_namespace(tmp_path, in_zoo, namespace):
    notes, files = _users_folder(tmp_path)
    in_zoo(make_card(file_entry("model.onnx", "http://127.0.0.1:9/model.onnx", DATA, standin="confinement-bytes")))
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    (root / namespace).symlink_to(notes)
    env = {**os.environ, "PYTHONPATH": str(Path(edgezoo.__file__).parents[1])}
    for argv in (["cache", "clean"], ["cache", "clean", "--stale"], ["cache", "list"]):
        done = subprocess.run([sys.executable, "-m", "edgezoo", *argv], capture_output=True, text=True, env=env,
                              timeout=120)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert f"{root / namespace} is a link to {notes}, outside the cache" in done.stderr
    assert _intact(files) and (root / namespace).is_symlink()


def test_fetch_writes_nothing_through_a_symlinked_namespace_or_card_folder(tmp_path, server, in_zoo, capsys):
    notes, files = _users_folder(tmp_path)
    in_zoo(make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA, standin="confinement-bytes")))
    root = cache_root()
    (root / "published").mkdir(parents=True)
    (root / "published" / "fetch-test").symlink_to(notes / "fetch-test")
    assert main(["fetch", "fetch-test"]) == 2
    assert "fetch-test is a link to" in _error(capsys)
    (root / "published" / "fetch-test").unlink()
    (root / "standins").symlink_to(notes)
    assert main(["fetch", "fetch-test", "--standin", "--standin-variant", "reduced"]) == 2
    assert f"{root / 'standins'} is a link to {notes}" in _error(capsys)
    assert _intact(files) and server.requests_for("model.onnx") == []
    assert sorted(p.name for p in notes.rglob("*") if p.is_file()) == ["2026.txt", "keep.txt", "model.onnx"]


def test_a_symlinked_locks_folder_is_refused(tmp_path, server, in_zoo, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    in_zoo(make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA)))
    cache_root().mkdir(parents=True, exist_ok=True)
    (cache_root() / ".locks").symlink_to(elsewhere)
    assert main(["fetch", "fetch-test"]) == 2
    assert ".locks is a link to" in _error(capsys)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("source", ["http", "mirror-folder"])
def test_a_part_file_that_is_a_link_is_never_written_through(tmp_path, server, in_zoo, capsys, source):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    in_zoo(make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA)))
    dest = cache_root() / "published" / "fetch-test" / "model.onnx"
    dest.parent.mkdir(parents=True)
    part_path(dest).symlink_to(victim)
    argv = ["fetch", "fetch-test"]
    if source == "mirror-folder":
        mirror = tmp_path / "mirror"
        mirror.mkdir()
        (mirror / "model.onnx").write_bytes(DATA)
        argv += ["--mirror", str(mirror)]
    assert main(argv) == 2
    err = _error(capsys)
    assert f"{part_path(dest)} is a link: edgezoo writes no cache file through it and kept nothing" in err
    assert victim.read_bytes() == b"precious" and not dest.exists()
    part_path(dest).unlink()  # as the message says: then the fetch works
    assert main(argv) == 0 and dest.read_bytes() == DATA and victim.read_bytes() == b"precious"


def test_a_hard_linked_part_is_not_written_either(tmp_path, server, in_zoo, capsys):
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"x" * 1000)
    in_zoo(make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA)))
    dest = cache_root() / "published" / "fetch-test" / "model.onnx"
    dest.parent.mkdir(parents=True)
    os.link(victim, part_path(dest))
    assert main(["fetch", "fetch-test"]) == 2
    assert "not a regular file of its own" in _error(capsys)
    assert victim.read_bytes() == b"x" * 1000


def test_a_temp_file_planted_as_a_link_is_replaced_not_followed(tmp_path, server, in_zoo, capsys):
    """trust.json is rewritten through `.trust.json.<pid>.tmp`: a link there is removed, its target untouched."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    labels = sized(500, seed=3)
    in_zoo(make_card(file_entry("labels.txt", server.add("labels.txt", labels))))  # checksum unknown: recorded
    cache_root().mkdir(parents=True, exist_ok=True)
    tmp = trust_path().with_name(f".{trust_path().name}.{os.getpid()}.tmp")
    tmp.symlink_to(victim)
    assert main(["fetch", "fetch-test"]) == 0
    assert victim.read_bytes() == b"precious" and not tmp.exists() and not tmp.is_symlink()
    assert "fetch-test/labels.txt" in trust_path().read_text()
