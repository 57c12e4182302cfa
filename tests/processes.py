"""edgezoo in a real process of its own, for the tests that signal it.

A test suite run as a background job (`make test &`, CI runners) inherits SIGINT *ignored*, and a child inherits
that: a SIGINT the test sends would then do nothing. The child gets the default disposition back before it runs
(Python then installs its KeyboardInterrupt handler), whatever this process inherited.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import edgezoo

SRC = Path(edgezoo.__file__).resolve().parents[1]


def _default_sigint() -> None:  # runs in the child between fork and exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def edgezoo_process(argv: list[str], **popen: Any) -> subprocess.Popen:
    """`python -m edgezoo ARGV` with SIGINT at its default disposition and this checkout's edgezoo first on the path.
    Keyword arguments go to Popen (stdout, stderr, env additions via `env`)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(SRC), **popen.pop("env", {})}
    return subprocess.Popen([sys.executable, "-m", "edgezoo", *argv], env=env, preexec_fn=_default_sigint,
                            **popen)
