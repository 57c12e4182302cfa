"""Result files written whole or not at all: a temporary file next to the target, renamed into place.

An interrupted or failed run therefore never leaves a complete-looking log, detections file or accuracy.json.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from edgezoo.core.errors import DatasetError, disk_full, is_disk_full


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
