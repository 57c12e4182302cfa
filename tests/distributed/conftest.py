"""The Ray cluster fixture: one two-node cluster for this folder's tests, stopped at the end even on failure."""

from __future__ import annotations

import os

import pytest

from tests.distributed.ray_nodes import Cluster, two_node_cluster


@pytest.fixture(scope="session")
def ray_cluster() -> Cluster:
    # The driver (this process) must speak the nodes' auth mode; restored afterwards.
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    try:
        with two_node_cluster() as cluster:
            yield cluster
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
