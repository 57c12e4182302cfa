"""A full disk while unpacking: one line saying the disk is full and where, exit 2, no
temporary folder left, and the archive (not at fault) stays cached and trusted."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from archives import tar, tgz_of_zeros
from fetch_cards import file_entry, make_card

from edgezoo.cli import main
from edgezoo.core.errors import DiskFullError
from edgezoo.fetch import unpack as unpack_mod
from edgezoo.fetch import fetch_member, tofu
from edgezoo.fetch.cache import published_path

MiB = 1 << 20


def test_injected_enospc_while_unpacking_says_the_disk_is_full(server, tmp_path, in_zoo, monkeypatch, capsys):
    data = tar(tmp_path / "bundle.tgz", [("model/model.pb", bytes(300_000))]).read_bytes()
    in_zoo(make_card(file_entry("bundle.tgz", server.add("bundle.tgz", data), archive="tgz",
                                members=["model/model.pb"])))  # checksum unknown: trusted on first use
    real_write = unpack_mod._write_member

    def fills_up(data, path, declared, archive, name):  # writes a part for real, then the disk is full
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.read(declared // 2))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(unpack_mod, "_write_member", fills_up)
    assert main(["fetch", "fetch-test"]) == 2
    err = capsys.readouterr().err
    cached = published_path("fetch-test", "bundle.tgz")
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and "unsafe or corrupt" not in err
    assert last == (f"edgezoo: error: no space left on the device while unpacking bundle.tgz in {cached.parent} "
                    f"(No space left on device) -- free space there (df -h {cached.parent}) or point the command "
                    f"at another folder")
    assert sorted(p.name for p in cached.parent.iterdir()) == ["bundle.tgz"]  # temporary folder removed
    assert tofu.trusted("fetch-test", "bundle.tgz") is not None  # the archive was not at fault

    monkeypatch.setattr(unpack_mod, "_write_member", real_write)  # space freed: the same command now works
    assert main(["fetch", "fetch-test"]) == 0
    assert (cached.parent / "bundle.tgz.unpacked/model/model.pb").stat().st_size == 300_000


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 1 MiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_tmpfs_while_unpacking(small_tmpfs: Path, server, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE", str(small_tmpfs))
    data = tgz_of_zeros(tmp_path / "zeros.tgz", 2 * MiB, block=MiB).read_bytes()  # ~4 KB, twice the tmpfs
    card = make_card(file_entry("zeros.tgz", server.add("zeros.tgz", data), data, archive="tgz",
                                members=["zeros.bin"]))
    with pytest.raises(DiskFullError) as info:
        fetch_member(card, "zeros.tgz", "zeros.bin", progress=False)
    folder = published_path("fetch-test", "zeros.tgz").parent
    assert str(info.value).startswith(f"no space left on the device while unpacking zeros.tgz in {folder} ")
    assert sorted(p.name for p in folder.iterdir()) == ["zeros.tgz"]
    free = os.statvfs(small_tmpfs)
    assert free.f_bavail * free.f_frsize > MiB - 64 * 1024  # the partial member went with its temporary folder
