"""Which Ray cluster to run on, and a session on it: `auto` starts a private local Ray (stopped afterwards), an
address joins a running cluster (`ray start --head` / `ray start --address`). Ray is imported only in here."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edgezoo.core.errors import EdgezooError

AUTO = "auto"
# How long joining may take before the address is called unreachable: a TCP connect to the head's GCS port. Ray's
# own ray.init() retries an unreachable address for minutes, so it is only called once the port answers.
CONNECT_TIMEOUT_S = 5.0
# Environment the actors need to behave as this process does (Ray workers inherit the raylet's environment, not
# the driver's): the cache and every EDGEZOO_* setting, TensorFlow's log level.
_FORWARDED = ("TF_CPP_MIN_LOG_LEVEL",)


class ClusterError(EdgezooError):
    """A Ray cluster cannot be used: bad --ray value, unreachable address, lost workers."""


@dataclass(frozen=True)
class RayTarget:
    """`auto` (a local Ray for this run) or the host:port of a running cluster's head."""

    host: str | None = None
    port: int | None = None

    @property
    def is_auto(self) -> bool:
        return self.host is None

    def __str__(self) -> str:
        return AUTO if self.is_auto else f"{self.host}:{self.port}"


def parse_ray_target(value: str) -> RayTarget:
    """`auto` or HOST:PORT, checked before anything starts."""
    text = str(value).strip()
    if text == AUTO:
        return RayTarget()
    host, sep, port = text.rpartition(":")
    hint = "use --ray auto (a local Ray for this run) or --ray HOST:PORT of a head started with 'ray start --head'"
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"--ray {value!r}: not 'auto' nor HOST:PORT", hint=hint)
    if not 1 <= int(port) <= 65535:
        raise ClusterError(f"--ray {value!r}: port {port} out of range (1..65535)", hint=hint)
    return RayTarget(host.strip("[]"), int(port))


def require_ray() -> None:
    """ClusterError when Ray is not installed (checked without importing it)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise ClusterError("--ray needs Ray, which is not installed", hint="pip install 'edgezoo[ray]'")


def check_reachable(target: RayTarget, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """ClusterError unless the head's port answers within `timeout` (nothing to check for `auto`)."""
    if target.is_auto:
        return
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterError(f"Ray cluster at {target} cannot be reached within {timeout:g} s ({reason})",
                           hint="start it with 'ray start --head --port PORT' or check the address, or use "
                                "--ray auto") from None


def check_ray_target(value: str) -> RayTarget:
    """A --ray value parsed, Ray installed and the address answering: every check before a model is loaded."""
    target = parse_ray_target(value)
    require_ray()
    check_reachable(target)
    return target


def actor_env() -> dict[str, str]:
    """The driver's settings that actors must share (the stand-in cache, TensorFlow's log level, EDGEZOO_*)."""
    return {k: v for k, v in os.environ.items() if k.startswith("EDGEZOO_") or k in _FORWARDED}


@dataclass
class Session:
    """A connected Ray: what it is and how long it took to get it."""

    target: RayTarget
    cpus: int
    nodes: int
    startup_s: float


@contextlib.contextmanager
def ray_session(target: RayTarget, *, connect_timeout: float = CONNECT_TIMEOUT_S) -> Iterator[Session]:
    """Ray initialised for this process; shut down afterwards (which stops the local Ray that `auto` started).
    When this process has already initialised Ray, that connection is used as it is and left running."""
    require_ray()
    check_reachable(target, connect_timeout)
    start = time.perf_counter()
    import ray  # lazy: only --ray runs pay for Ray

    if ray.is_initialized():  # the caller's own Ray (a notebook, another pass of the same run): use it, keep it
        yield _describe(ray, target, time.perf_counter() - start)
        return
    try:
        ray.init(address="local" if target.is_auto else str(target), include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR", configure_logging=True,
                 runtime_env={"env_vars": actor_env()})
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, AuthenticationError, ValueError ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClusterError(f"Ray at {target}: cannot join ({first})",
                           hint="is it a Ray head of the same Ray version, with the same RAY_AUTH_MODE / token?") \
            from None
    try:
        yield _describe(ray, target, time.perf_counter() - start)
    finally:
        ray.shutdown()


def _describe(ray: Any, target: RayTarget, startup_s: float) -> Session:
    cpus = int(ray.cluster_resources().get("CPU", 0))
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return Session(target, cpus, nodes, startup_s)
