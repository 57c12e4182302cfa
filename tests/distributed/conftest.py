"""The Ray cluster fixture: one two-node cluster for this folder's tests, stopped at the end even on failure."""

from __future__ import annotations

import os

import pytest

from tests.distributed.ray_nodes import Cluster, auth_env, two_node_cluster


@pytest.fixture(scope="package")  # stopped (and the environment restored) when this folder's tests end
def ray_cluster() -> Cluster:
    # The driver (this process) joins as a user's client does: token mode and the cluster's token; restored after.
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_USAGE_STATS_ENABLED")}
    try:
        with two_node_cluster() as cluster:
            os.environ.update(auth_env(cluster.token_path), RAY_USAGE_STATS_ENABLED="0")
            yield cluster
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
