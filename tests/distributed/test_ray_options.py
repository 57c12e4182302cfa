"""--ray / --ray-actors bad input and unreachable clusters (one line, exit 2, nothing written, bounded wait), `auto`
(a private local Ray, stopped afterwards), and no Ray import without --ray."""

from __future__ import annotations

import contextlib
import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgezoo.cli import main
from edgezoo.distributed import ClusterError, parse_ray_target
from edgezoo.distributed.cluster import CONNECT_TIMEOUT_S
from edgezoo.evaluation.api import evaluate
from tests.distributed.ray_nodes import free_port
from tests.evaluation.eval_helpers import bundle, labelled_dataset


def _eval(capsys, *args):
    capsys.readouterr()
    code = main(["eval", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("value, says", [
    ("foo", "not 'auto' nor HOST:PORT"), ("host:99999", "out of range (1..65535)"), (":6379", "not 'auto'"),
    ("host:port", "not 'auto'"), ("host:\u00b2", "not 'auto' nor HOST:PORT"),
    ("a..b:6379", "the host name has an empty part"), ("h" * 300 + ":6379", "the host name is 300 characters long"),
    ("h\u00f4st:6379", "not ASCII"), ("head.-x:6379", "'-x' is not a host name part"),
    ("a." + "b" * 64 + ":6379", "is not a host name part"),
])
def test_bad_ray_value(tmp_path, capsys, value, says):
    data = labelled_dataset("imagenet", "mobilenet-v1", 4)
    code, err = _eval(capsys, "mobilenet-v1", "--standin", "--dataset", data, "--out", tmp_path / "o", "--ray", value)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, says", [
    (["--ray", "auto", "--ray-actors", "0"], "--ray-actors 0: out of range"),
    (["--ray", "auto", "--ray-actors", "two"], "--ray-actors 'two': not a whole number"),
    (["--ray-actors", "2"], "--ray-actors needs --ray"),
])
def test_bad_actor_count(tmp_path, capsys, args, says):
    data = labelled_dataset("imagenet", "mobilenet-v1", 4)
    code, err = _eval(capsys, "mobilenet-v1", "--standin", "--dataset", data, "--out", tmp_path / "o", *args)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1


def test_unreachable_cluster_is_one_line_within_the_bound(tmp_path, capsys):
    data = labelled_dataset("imagenet", "mobilenet-v1", 4)
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    code, err = _eval(capsys, "mobilenet-v1", "--standin", "--dataset", data, "--out", tmp_path / "o", "--ray", address)
    assert time.monotonic() - start < CONNECT_TIMEOUT_S + 5
    assert code == 2 and f"Ray cluster at {address} cannot be reached" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reads this process's stderr
        pass


@contextlib.contextmanager
def _server(kind: str) -> Iterator[str]:
    """A real server on 127.0.0.1 that is not Ray: an HTTP server, or a port that accepts and never says a word."""
    if kind == "http":
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
        return
    with socket.socket() as listener:  # the kernel completes the handshakes (backlog); nobody ever reads
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("kind, says", [("http", "it answered '<!DOCTYPE HTML>"),
                                        ("silent", "it says nothing to an HTTP/2 greeting")])
def test_a_port_that_answers_but_is_not_ray_is_one_line_within_the_bound(tmp_path, capsys, kind, says):
    data = labelled_dataset("imagenet", "mobilenet-v1", 4)
    with _server(kind) as address:
        start = time.monotonic()
        code, err = _eval(capsys, "mobilenet-v1", "--standin", "--dataset", data, "--out", tmp_path / "o",
                          "--ray", address)
        elapsed = time.monotonic() - start
    assert elapsed < CONNECT_TIMEOUT_S + 5, elapsed  # the README's promise: exit 2 within 5 s
    assert code == 2 and f"{address} answers, but not as a Ray head ({says}" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_unreachable_cluster_through_the_api_writes_nothing(tmp_path):
    from edgezoo.datasets import open_dataset
    from edgezoo.evaluation.subjects import bundle_subjects

    dataset = open_dataset(labelled_dataset("imagenet", "mobilenet-v1", 4))
    with pytest.raises(ClusterError, match="cannot be reached"):
        evaluate(bundle_subjects(bundle("mobilenet-v1", "tflite")), dataset, tmp_path / "o",
                 ray=f"127.0.0.1:{free_port()}", progress=False)
    assert not (tmp_path / "o").exists()


def test_parse_ray_target():
    assert parse_ray_target("auto").is_auto and str(parse_ray_target(" auto ")) == "auto"
    target = parse_ray_target("10.0.0.5:6379")
    assert (target.host, target.port, str(target)) == ("10.0.0.5", 6379, "10.0.0.5:6379")
    assert str(parse_ray_target("[::1]:6379")) == "::1:6379"


def test_auto_starts_a_private_ray_and_stops_it(tmp_path):
    """In a process of its own: a local Ray switches its process to token auth, which would leak into the other
    tests' driver (this process). One actor with every CPU of this machine (--threads): the local run's records."""
    from edgezoo.graphs.runners import available_cpus

    data = labelled_dataset("imagenet", "mobilenet-v1", 6)
    folder = bundle("mobilenet-v1", "tflite")
    assert main(["eval", str(folder), "--dataset", str(data), "--out", str(tmp_path / "local")]) == 0
    cpus = available_cpus()
    code = ("import sys, ray\nfrom edgezoo.cli import main\n"
            f"rc = main(['eval', {str(folder)!r}, '--dataset', {str(data)!r}, '--out', {str(tmp_path / 'ray')!r}, "
            f"'--ray', '--ray-actors', '1', '--threads', '{cpus}'])\n"
            "sys.exit(rc or (4 if ray.is_initialized() else 0))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]  # 4: Ray still initialised after the run
    assert "Ray auto: 1 node(s)" in result.stderr
    assert f"1 actor(s){f' of {cpus} CPUs' if cpus > 1 else ''}; ready in" in result.stderr
    name = Path("mobilenet-v1") / "tflite" / "mlperf_log_accuracy.json"
    assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()


def test_local_eval_never_imports_ray(tmp_path):
    data = labelled_dataset("imagenet", "mobilenet-v1", 4)
    folder = bundle("mobilenet-v1", "tflite")
    code = ("import sys\nfrom edgezoo.cli import main\n"
            f"rc = main(['eval', {str(folder)!r}, '--dataset', {str(data)!r}, '--out', {str(tmp_path)!r}])\n"
            "sys.exit(rc if rc else 3 if 'ray' in sys.modules else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "mobilenet-v1" / "tflite" / "accuracy.json").is_file()


def test_ray_not_installed_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what importlib sees when Ray is not installed
    data = labelled_dataset("imagenet", "mobilenet-v1", 4)
    code, err = _eval(capsys, "mobilenet-v1", "--standin", "--dataset", data, "--out", tmp_path / "o", "--ray")
    assert code == 2 and "--ray needs Ray, which is not installed" in err and "edgezoo[ray]" in err
    assert len(err.strip().splitlines()) == 1


def test_subject_source_unreadable_on_a_node_names_the_path(tmp_path):
    from edgezoo.evaluation.subjects import SubjectError, SubjectSource

    missing = tmp_path / "not-mounted-here" / "model.pb"
    with pytest.raises(SubjectError, match=r"not-mounted-here/model\.pb is not readable on this machine") as info:
        SubjectSource(str(missing), card_id="mobilenet-v1").build()
    assert "shared file system" in str(info.value) and "\n" not in str(info.value)
