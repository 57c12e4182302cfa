"""Per-item functions for the pool tests, in a module the actors import as tests.distributed.pool_functions."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from edgezoo.core.errors import DatasetError


def square_factory(log_dir: str, die_at: int | None):
    """Per-item function: logs every computation (one file per call) and, the first time it meets `die_at`,
    SIGKILLs its own process -- a real worker death, seen by Ray exactly as an OOM kill or a lost node."""

    def square(x: int) -> int:
        marker = Path(log_dir) / "died"
        if x == die_at and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        Path(log_dir, f"{x}-{os.getpid()}-{os.urandom(4).hex()}").touch()
        return x * x

    return square


def fails_on_three():
    def fn(x: int) -> int:
        if x == 3:
            raise DatasetError(f"image {x} cannot be decoded")
        return x

    return fn


class CpuHolder:
    """An actor that only holds its CPU: another run on the same cluster."""

    def ping(self) -> bool:
        return True
