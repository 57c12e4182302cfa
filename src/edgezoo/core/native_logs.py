"""Runtime start-up chatter kept out of edgezoo's output, real errors kept in.

TensorFlow (2.21) prints, from C++ while it is imported, absl's "All log messages before absl::InitializeLog() ..."
and oneDNN's "I0000 ... oneDNN custom operations are on" notices before it reads TF_CPP_MIN_LOG_LEVEL, and LiteRT
prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." when an interpreter first allocates. They go to file
descriptor 2, below Python's sys.stderr, so they can only be caught there.

`quiet_native_logs()` sends fd 2 to a temporary file for the length of such a call and then writes back every line
that is not one of those exact notices (so a real error printed there still reaches the user, only later).
`install()` (called by the CLI) does this around the first import of TensorFlow, wherever it happens, and turns
TensorFlow's Python deprecation warnings off (logger "tensorflow" at ERROR).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

# Exact start-up notices; anything else written to fd 2 meanwhile is written back.
NOISE = (
    re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(rb"I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*"),
    re.compile(rb"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."),
)
_QUIET_MODULES = ("tensorflow",)


def is_noise(line: bytes) -> bool:
    return any(p.fullmatch(line.rstrip(b"\r\n")) for p in NOISE)


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """fd 2 into a temporary file while the block runs; afterwards all but the known notices are written back."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = b"".join(line for line in capture.read().splitlines(keepends=True) if not is_noise(line))
            if kept:
                os.write(2, kept)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        with quiet_native_logs():
            self._loader.exec_module(module)
        logging.getLogger(module.__name__).setLevel(logging.ERROR)  # deprecation notes are not the user's concern


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the modules in _QUIET_MODULES (their first import only)."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in _QUIET_MODULES:
            return None
        sys.meta_path.remove(self)  # once: the real finders find it, this wraps what they return
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet the first import of TensorFlow in this process (idempotent; nothing happens when it is loaded)."""
    if any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        return
    if all(m in sys.modules for m in _QUIET_MODULES):
        return
    sys.meta_path.insert(0, _QuietFinder())
