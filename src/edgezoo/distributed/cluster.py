"""Which Ray cluster to run on, and a session on it: `auto` starts a private local Ray (stopped afterwards), an
address joins a running cluster (`ray start --head` / `ray start --address`). Ray is imported only in here."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edgezoo.core.errors import EdgezooError

AUTO = "auto"
# How long joining may take before the address is called unreachable: a TCP connect to the head's GCS port, then
# its answer to an HTTP/2 greeting. Ray's own ray.init() retries an unreachable address for minutes and waits as
# long on a port that answers in another protocol, so it is only called once the port has answered as a Ray head.
CONNECT_TIMEOUT_S = 5.0
# The GCS is a gRPC server, i.e. HTTP/2: to the client preface and an empty SETTINGS frame it answers with its own
# SETTINGS frame (type 4, stream 0) first. An HTTP/1 server, a database or a silent port does not.
_H2_GREETING = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_H2_FRAME_HEADER = 9
_H2_SETTINGS = 4
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
MAX_HOST_CHARS = 253  # DNS: a name is at most 253 characters, a label 63
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
    shown = text if len(text) <= 80 else f"{text[:60]}...{text[-12:]}"
    if text == AUTO:
        return RayTarget()
    host, sep, port = text.rpartition(":")
    hint = "use --ray auto (a local Ray for this run) or --ray HOST:PORT of a head started with 'ray start --head'"
    if not sep or not host or not (port.isascii() and port.isdigit()):  # '²'.isdigit() is True
        raise ClusterError(f"--ray {shown!r}: not 'auto' nor HOST:PORT", hint=hint)
    if not 1 <= int(port) <= 65535:
        raise ClusterError(f"--ray {shown!r}: port {port} out of range (1..65535)", hint=hint)
    host = host.strip("[]")
    problem = _host_problem(host)
    if problem:
        raise ClusterError(f"--ray {shown!r}: {problem}", hint=hint)
    return RayTarget(host, int(port))


def _host_problem(host: str) -> str | None:
    """Why `host` is neither an IP address nor a DNS name, or None (checked here: the resolver's own errors are
    ValueError / UnicodeError tracebacks)."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if not host.isascii():
        return "the host name is not ASCII (give its IDNA form, xn--..., or an IP address)"
    if len(host.rstrip(".")) > MAX_HOST_CHARS:
        return f"the host name is {len(host)} characters long (at most {MAX_HOST_CHARS})"
    bad = next((label for label in host.rstrip(".").split(".") if not _HOST_LABEL.fullmatch(label)), None)
    if bad is not None:
        shown = bad if len(bad) <= 70 else bad[:70] + "..."
        return (f"{shown!r} is not a host name part (letters, digits, '-', 1 to 63 characters)" if bad
                else "the host name has an empty part ('..')")
    return None


def require_ray() -> None:
    """ClusterError when Ray is not installed (checked without importing it)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise ClusterError("--ray needs Ray, which is not installed", hint="pip install 'edgezoo[ray]'")


def check_reachable(target: RayTarget, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """ClusterError unless the head's port answers within `timeout` (nothing to check for `auto`)."""
    if target.is_auto:
        return
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout) as conn:
            answer = _h2_answer(conn, deadline)
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterError(f"Ray cluster at {target} cannot be reached within {timeout:g} s ({reason})",
                           hint="start it with 'ray start --head --port PORT' or check the address, or use "
                                "--ray auto") from None
    if answer is not None:
        raise ClusterError(f"{target} answers, but not as a Ray head ({answer})",
                           hint="give the port the head's GCS listens on ('ray start --head --port PORT', default "
                                "6379), or use --ray auto")


def _h2_answer(conn: socket.socket, deadline: float) -> str | None:
    """None when the peer answers the HTTP/2 greeting with a SETTINGS frame, as Ray's GCS (gRPC) does; else what
    it did instead. TLS clusters (RAY_USE_TLS) cannot be greeted in clear text and are not checked."""
    if os.environ.get("RAY_USE_TLS", "").strip().lower() in ("1", "true", "yes"):
        return None
    conn.sendall(_H2_GREETING)
    data = b""
    while len(data) < _H2_FRAME_HEADER:
        left = deadline - time.monotonic()
        if left <= 0:
            return "it says nothing to an HTTP/2 greeting"
        conn.settimeout(left)
        try:
            chunk = conn.recv(_H2_FRAME_HEADER - len(data))
        except TimeoutError:
            return "it says nothing to an HTTP/2 greeting" + (f", only {_printable(data)}" if data else "")
        except OSError as exc:
            return f"it closed the connection ({exc.strerror or exc})"
        if not chunk:
            return "it closed the connection" + (f" after {_printable(data)}" if data else " without a word")
        data += chunk
    stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
    if data[3] == _H2_SETTINGS and stream == 0:
        return None
    with contextlib.suppress(OSError):  # a little more of the answer, for the message ('HTTP/1.0 400 Bad Request')
        conn.settimeout(max(0.0, min(0.2, deadline - time.monotonic())))
        data += conn.recv(32)
    return f"it answered {_printable(data)}"


def _printable(data: bytes) -> str:
    """The first bytes of a peer's answer, quoted for a message ('HTTP/1.0 400' from a web server)."""
    text = data[:40].decode("latin-1")
    return repr("".join(c if c.isprintable() else "." for c in text))


def check_ray_target(value: str) -> RayTarget:
    """A --ray value parsed, Ray installed and the address answering: every check before a model is loaded."""
    target = parse_ray_target(value)
    require_ray()
    check_reachable(target)
    check_authentication(target)
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
    node_cpus: tuple[int, ...] = ()  # each live node's CPUs (an actor's CPUs must fit on one node)

    def actors_of(self, cpus: int) -> int:
        """How many actors of `cpus` CPUs the cluster can place at once."""
        return sum(n // cpus for n in self.node_cpus) if self.node_cpus else self.cpus // cpus


@contextlib.contextmanager
def ray_session(target: RayTarget, *, connect_timeout: float = CONNECT_TIMEOUT_S) -> Iterator[Session]:
    """Ray initialised for this process; shut down afterwards (which stops the local Ray that `auto` started).
    When this process has already initialised Ray, that connection is used as it is and left running."""
    require_ray()
    check_reachable(target, connect_timeout)
    start = time.perf_counter()
    check_authentication(target)
    import ray  # lazy: only --ray runs pay for Ray

    if ray.is_initialized():  # the caller's own Ray (a notebook, another pass of the same run): use it, keep it
        yield _describe(ray, target, time.perf_counter() - start)
        return
    try:
        ray.init(address="local" if target.is_auto else str(target), include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR", configure_logging=True,
                 runtime_env={"env_vars": actor_env()})
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, AuthenticationError, ValueError ...
        if _authentication_failed(exc):
            raise _authentication_error(target) from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClusterError(f"Ray at {target}: cannot join ({first})",
                           hint="is it a Ray head of the same Ray version, with the same RAY_AUTH_MODE / token?") \
            from None
    try:
        yield _describe(ray, target, time.perf_counter() - start)
    finally:
        ray.shutdown()


# Asks the head for its cluster id as ray.init() does first, in a process of its own: Ray's client logs the refusal
# on the process's stderr (C++), and ray.init() itself retries a refused token for ~20 s before saying only "Failed
# to connect". Prints the exception's class name, nothing when the head accepted this client.
_AUTH_PROBE = """import sys
from ray._raylet import GcsClient
try:
    GcsClient(address=sys.argv[1])
except Exception as exc:
    print(type(exc).__name__)
"""


_ACCEPTED: set[str] = set()


def check_authentication(target: RayTarget, timeout: float = 2 * CONNECT_TIMEOUT_S) -> None:
    """ClusterError naming RAY_AUTH_MODE=token when the head refuses this client's authentication (nothing to check
    for `auto`). A probe that cannot tell (timed out, another error) leaves the verdict to ray.init()."""
    if target.is_auto or str(target) in _ACCEPTED:
        return
    try:
        probe = subprocess.run([sys.executable, "-c", _AUTH_PROBE, str(target)], capture_output=True, text=True,
                               timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        return
    if probe.stdout.strip() == "AuthenticationError":
        raise _authentication_error(target)
    if probe.returncode == 0 and not probe.stdout.strip():
        _ACCEPTED.add(str(target))  # checked once per process (the CLI's checks, then the session)


def _authentication_error(target: RayTarget) -> ClusterError:
    return ClusterError(f"Ray at {target}: the cluster refused this client's authentication token "
                        f"(RAY_AUTH_MODE is {os.environ.get('RAY_AUTH_MODE', 'unset')!r} here)",
                        hint="Ray clusters use token authentication by default: set RAY_AUTH_MODE=token and give "
                             "the head's token (copy its ~/.ray/auth_token, or set RAY_AUTH_TOKEN / "
                             "RAY_AUTH_TOKEN_PATH); see README 'On a Ray cluster'")


def _authentication_failed(exc: BaseException) -> bool:
    """Ray's AuthenticationError (a missing, wrong or unsent token), whatever module it is raised from."""
    return type(exc).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(exc)


def _describe(ray: Any, target: RayTarget, startup_s: float) -> Session:
    cpus = int(ray.cluster_resources().get("CPU", 0))
    alive = [node for node in ray.nodes() if node.get("Alive")]
    node_cpus = tuple(int(node.get("Resources", {}).get("CPU", 0)) for node in alive)
    return Session(target, cpus, len(alive), startup_s, node_cpus)
