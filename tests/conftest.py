"""Shared fixtures. Tests never touch the network or the user's cache: EDGEZOO_CACHE points into tmp."""

from __future__ import annotations

import os

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
