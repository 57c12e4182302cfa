"""Reproducible archives for stand-ins: the same contents always give the same bytes (and so the same sha256)."""

from __future__ import annotations

import gzip
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path


def deterministic_tgz(dest: Path, members: Mapping[str, Path], folders: Iterable[str] = ()) -> Path:
    """Write a .tar.gz of `members` (archive name -> file) after the `folders` entries, with fixed mtimes, modes
    and owners and no gzip timestamp or name."""
    with open(dest, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in folders:
            folder = tarfile.TarInfo(name)
            folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(folder)
        for name, path in members.items():
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    return dest
