"""Files and folders published whole or not at all.

A result file is written to a temporary file next to the target and renamed into place, so an interrupted or failed
run never leaves a complete-looking log, detections file or accuracy.json. A folder (a bundle, a stand-in dataset)
is built beside its destination and swapped in with two renames; the old one comes back if the second fails.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from edgezoo.core.errors import BundleError, DatasetError, disk_full, is_disk_full

OLD_MARK = ".old-"  # a replaced folder, moved aside until the new one is in place


def write_text_atomically(path: Path, write: Callable[[TextIO], None], what: str) -> Path:
    """Call `write(handle)` on a temporary file beside `path`, then rename it to `path`. `what` names the file in
    errors ("the accuracy log"). A full disk -> DiskFullError; other OS errors -> DatasetError; never a leftover."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")  # unique: concurrent writers never collide
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            write(handle)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full(exc, path.parent, f"writing {what}") from None
        raise DatasetError(f"{path}: cannot write {what}: {exc.strerror or exc}",
                           hint="check that the folder exists and is writable") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def not_a_folder(path: Path) -> bool:
    # One stat: "exists() and not is_dir()" would see a bundle that another run is swapping as "not a folder".
    try:
        return not stat.S_ISDIR(path.stat().st_mode)
    except FileNotFoundError:
        return False


def swap_in(src: Path, dest: Path) -> Path | None:
    """Rename `src` to `dest`; an existing `dest` is moved aside first and returned (the caller deletes it).

    os.replace cannot replace a non-empty folder, hence the two renames. If the second one fails, the old bundle goes
    back where it was.
    """
    if not dest.exists():
        os.replace(src, dest)
        return None
    if not_a_folder(dest):
        raise BundleError(f"{dest}: exists and is not a folder", hint="remove it or choose another --out")
    old = dest.with_name(f".{dest.name}{OLD_MARK}{uuid.uuid4().hex[:12]}")
    os.replace(dest, old)
    try:
        os.replace(src, dest)
    except OSError:
        os.replace(old, dest)
        raise
    return old


def replace_folder(src: Path, dest: Path) -> None:
    """Put folder `src` in place of `dest` (whole or not at all) and delete the replaced one.

    For callers that publish a folder without a bundle's lock (e.g. a stand-in dataset); bundles use the swap under
    the output folder's lock."""
    old = swap_in(src, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
