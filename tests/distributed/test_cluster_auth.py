"""The two-node cluster runs Ray's token authentication (as `ray start` sets it up on a user's machines): a client
that does not speak it is told, in one line, to set RAY_AUTH_MODE=token and give the head's token."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.evaluation.eval_helpers import bundle, labelled_dataset

BOUND_S = 60  # Ray's own client gives up on a refused token quickly; never its minutes of connection retries


def _eval_as_a_client(cluster, tmp_path, env_changes: dict[str, str | None]) -> tuple[subprocess.CompletedProcess,
                                                                                    float]:
    data, folder = labelled_dataset("imagenet", "mobilenet-v1", 4), bundle("mobilenet-v1", "tflite")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path / "home")  # no ~/.ray/auth_token of this machine's user
    for key, value in env_changes.items():
        if value is not None:
            env[key] = value
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "edgezoo", "eval", str(folder), "--dataset", str(data),
                             "--out", str(tmp_path / "o"), "--ray", cluster.address],
                            capture_output=True, text=True, timeout=300, env=env)
    return result, time.monotonic() - start


@pytest.mark.parametrize("env_changes, says", [
    ({}, "RAY_AUTH_MODE is 'unset' here"),  # a client started as Ray's docs for a plain cluster say
    ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}, "RAY_AUTH_MODE is 'token' here"),  # the wrong token
])
def test_a_client_without_the_token_is_told_what_to_set(ray_cluster, tmp_path, env_changes, says):
    result, seconds = _eval_as_a_client(ray_cluster, tmp_path, env_changes)
    err = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(err) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"Ray at {ray_cluster.address}: the cluster refused this client's authentication token" in err[0]
    assert says in err[0] and "set RAY_AUTH_MODE=token" in err[0] and "RAY_AUTH_TOKEN_PATH" in err[0]
    assert seconds < BOUND_S and not (tmp_path / "o").exists()


def test_a_client_with_the_token_joins(ray_cluster, tmp_path):
    """README's client step: RAY_AUTH_MODE=token and the head's token (here by RAY_AUTH_TOKEN_PATH)."""
    result, _ = _eval_as_a_client(ray_cluster, tmp_path, {"RAY_AUTH_MODE": "token",
                                                          "RAY_AUTH_TOKEN_PATH": str(ray_cluster.token_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 node(s), 2 CPU(s)" in result.stderr
    assert (tmp_path / "o" / "mobilenet-v1" / "tflite" / "accuracy.json").is_file()
