"""A full disk during a download: one line, exit 2, the .part kept (and resumed next time) and named with its size.

Once with an injected ENOSPC (any machine), once on a real 1 MiB tmpfs (where this process may mount one).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from fetch_cards import file_entry, make_card
from loopback_server import sized

from edgezoo.cli import main
from edgezoo.fetch import download as download_module
from edgezoo.fetch.cache import part_path, published_path

DATA = sized(2_000_000, seed=5)
REAL_WRITE_ALL = download_module._write_all


def _disk_full_after(monkeypatch, limit: int) -> None:
    """Writes into any file succeed for the first `limit` bytes in all, then fail like a full disk would."""
    real = REAL_WRITE_ALL
    written = 0

    def write_all(out, data):
        nonlocal written
        room = max(0, limit - written)
        if len(data) > room:
            real(out, memoryview(data)[:room])
            written += room
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(out, data)
        written += len(data)
    monkeypatch.setattr(download_module, "_write_all", write_all)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_enospc_keeps_the_part_names_it_and_the_next_fetch_resumes(server, in_zoo, capsys, monkeypatch):
    url = server.add("model.onnx", DATA)
    in_zoo(make_card(file_entry("model.onnx", url, DATA)))
    _disk_full_after(monkeypatch, 1_500_000)
    assert main(["fetch", "fetch-test"]) == 2
    line = _error_line(capsys)
    part = part_path(published_path("fetch-test", "model.onnx"))
    assert part.stat().st_size == 1_500_000 and part.read_bytes() == DATA[:1_500_000]
    assert line.startswith("edgezoo: error: fetch-test: model.onnx (from http://127.0.0.1")
    assert f"no space left on the device while writing model.onnx.part in {part.parent}" in line
    assert f"the partial download {part} (1,500,000 bytes) is kept and the next fetch resumes from it" in line
    assert f"df -h {part.parent}" in line
    assert not published_path("fetch-test", "model.onnx").exists()
    assert len(server.requests_for("model.onnx")) == 1  # a full disk is not retried

    monkeypatch.setattr(download_module, "_write_all", REAL_WRITE_ALL)  # room again
    assert main(["fetch", "fetch-test"]) == 0
    assert server.requests_for("model.onnx")[-1].range == "bytes=1500000-"
    assert published_path("fetch-test", "model.onnx").read_bytes() == DATA and not part.exists()


def test_enospc_while_copying_from_a_mirror_folder_removes_the_partial_copy(tmp_path, in_zoo, capsys,
                                                                             monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "model.onnx").write_bytes(DATA)
    in_zoo(make_card(file_entry("model.onnx", "http://127.0.0.1:9/model.onnx", DATA)))
    _disk_full_after(monkeypatch, 1_048_576)
    assert main(["fetch", "fetch-test", "--mirror", str(mirror)]) == 2
    line = _error_line(capsys)
    part = part_path(published_path("fetch-test", "model.onnx"))
    assert "no space left on the device while writing model.onnx.part" in line
    assert f"the partial copy {part} was removed" in line and not part.exists()


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MiB tmpfs (skipped where mounting is not allowed); yields (mount point, grow())."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    point = tmp_path / f"tiny-{uuid.uuid4().hex[:8]}"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=4m", str(point)], check=True)
    try:
        yield point, grow
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_real_full_disk_keeps_the_part_and_the_fetch_resumes_once_there_is_room(server, in_zoo, capsys,
                                                                                  monkeypatch, tiny_disk):
    point, grow = tiny_disk
    monkeypatch.setenv("EDGEZOO_CACHE", str(point))
    in_zoo(make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA)))
    assert main(["fetch", "fetch-test"]) == 2
    line = _error_line(capsys)
    part = part_path(published_path("fetch-test", "model.onnx"))
    kept = part.stat().st_size
    assert 0 < kept < len(DATA) and part.read_bytes() == DATA[:kept]  # what reached the disk is a true prefix
    assert f"({kept:,} bytes) is kept and the next fetch resumes from it" in line and str(part) in line
    assert "No space left on device" in line and f"df -h {part.parent}" in line
    assert not published_path("fetch-test", "model.onnx").exists()

    grow()
    assert main(["fetch", "fetch-test"]) == 0
    assert server.requests_for("model.onnx")[-1].range == f"bytes={kept}-"
    assert published_path("fetch-test", "model.onnx").read_bytes() == DATA
    assert not Path(part).exists()
