"""A real two-node Ray cluster on 127.0.0.1 for the tests, started with `ray start` and always stopped.

Token authentication is ON, as on a user's cluster (Ray's default), set up as README's cluster instructions say:
the token made by `ray get-auth-token --generate` (into a home folder of the cluster's own, not this user's
~/.ray), every node and the driver in token mode with RAY_AUTH_TOKEN_PATH pointing at it.

Scoped so it never touches other Ray instances on the machine: its own temp dir, ports picked free, every node in
a process group of its own (`ray start` in a new session), and stopping kills those groups and the processes whose
parent is one of their members (Ray's workers start new groups) -- never `ray stop`, which stops every Ray here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import edgezoo

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def auth_env(token_path: Path) -> dict[str, str]:
    """What every machine of the cluster (nodes and drivers) sets: token mode and where the shared token is."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)}


def cluster_env(token_path: Path) -> dict[str, str]:
    """The nodes' (and so the actors') environment: this edgezoo first on the path, token auth, no telemetry."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN", "RAY_ADDRESS")}
    src = Path(edgezoo.__file__).resolve().parents[1]
    # src/ and the repository (test functions are pickled by reference to tests.*)
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(src.parent), *filter(None, [env.get("PYTHONPATH")])])
    env.update(auth_env(token_path), RAY_USAGE_STATS_ENABLED="0")
    return env


def _ports() -> list[str]:
    """Every port a node would otherwise take from a fixed default (10001, 52365, ...) that another Ray may hold."""
    names = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")
    return [arg for name in names for arg in (name, str(free_port()))]


def _children(pids: set[int]) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid, pgid = (int(x) for x in stat.rsplit(")", 1)[1].split()[1:3])
                if ppid in pids or pgid in pids:
                    found.add(int(entry.name))
    return found


@dataclass
class Cluster:
    address: str
    temp_dir: Path
    groups: list[int] = field(default_factory=list)  # one process group per node

    @property
    def token_path(self) -> Path:
        return self.temp_dir / "home" / ".ray" / "auth_token"  # where `ray get-auth-token --generate` writes

    def pids(self) -> set[int]:
        """Every process of this cluster: the nodes' groups and, transitively, their children."""
        pids: set[int] = set(self.groups)
        while True:
            more = _children(pids) - pids
            if not more:
                return pids
            pids |= more

    def stop(self) -> None:
        pids = self.pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and not _zombie(p) for p in pids):
                time.sleep(0.2)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


def _start_node(cluster: Cluster, args: list[str]) -> None:
    proc = subprocess.Popen([RAY, "start", "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
                             "--disable-usage-stats", *_ports(), *args], env=cluster_env(cluster.token_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    cluster.groups.append(proc.pid)  # the session's group outlives `ray start` itself
    try:
        out, _ = proc.communicate(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise RuntimeError(f"ray start {' '.join(args)} did not finish within {START_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"ray start {' '.join(args)} failed:\n{out[-3000:]}")


@contextlib.contextmanager
def two_node_cluster() -> Iterator[Cluster]:
    """A head and a second node (one CPU each), stopped on exit whatever happened."""
    port = free_port()
    # Short path: Ray's unix sockets live under it (108-byte limit).
    cluster = Cluster(f"127.0.0.1:{port}", Path(tempfile.mkdtemp(prefix="ezr-", dir="/tmp")))
    try:
        env = {k: v for k, v in cluster_env(cluster.token_path).items() if not k.startswith("RAY_AUTH")}
        home = str(cluster.token_path.parents[1])
        made = subprocess.run([RAY, "get-auth-token", "--generate"], env={**env, "HOME": home},
                              capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if made.returncode != 0 or not cluster.token_path.is_file():
            raise RuntimeError(f"ray get-auth-token --generate failed:\n{made.stderr[-3000:]}")
        _start_node(cluster, ["--head", "--port", str(port), "--temp-dir", str(cluster.temp_dir),
                              "--include-dashboard=false", "--ray-client-server-port", str(free_port())])
        _start_node(cluster, ["--address", cluster.address])
        yield cluster
    finally:
        cluster.stop()
