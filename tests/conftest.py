"""Shared fixtures. Tests never touch the network or the user's cache: EDGEZOO_CACHE points into tmp."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.mktemp("edgezoo-cache")
    monkeypatch.setenv("EDGEZOO_CACHE", str(cache))
    # Keep TensorFlow quiet and single-threaded-ish on the 2-core CI machine.
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    yield cache


def pytest_configure(config):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, size[, options]) -> a fresh tmpfs of that size under tmp_path, unmounted afterwards (root only:
    the test is skipped with the reason otherwise). A real full disk, or with options="ro" a read-only folder."""
    mounted: list[Path] = []

    def mount(name: str, size: str, options: str = "") -> Path:
        where = tmp_path / name
        where.mkdir()
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(filter(None, [f"size={size}", options])),
                                   "tmpfs", str(where)],
                                  capture_output=True, text=True)
            reason = done.stderr.strip() or f"exit {done.returncode}"
        except OSError as exc:
            done, reason = None, str(exc)
        if done is None or done.returncode:
            pytest.skip(f"cannot mount a {size} tmpfs for a real full disk ({reason}): needs root or CAP_SYS_ADMIN")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def default_sigint():
    """Python's own SIGINT handler (KeyboardInterrupt) for a test that sends itself SIGINT: a suite started as a
    background job inherits SIGINT ignored, and Python then never installs that handler. Put back afterwards."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
