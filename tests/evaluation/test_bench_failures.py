"""`edgezoo bench` when things go wrong under the real LoadGen: a full disk (LoadGen's logger fails silently), logs
cut by a file size limit, and Ctrl-C in the middle of a long run (honoured at once, cleanly, nothing published)."""

from __future__ import annotations

import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from edgezoo.cli import main
from tests.evaluation.eval_helpers import bundle, labelled_dataset
from tests.processes import edgezoo_process

COUNT = 8


def _bench(*extra: str) -> list[str]:
    return ["bench", str(bundle("mobilenet-v1", "tflite")), "--dataset",
            str(labelled_dataset("imagenet", "mobilenet-v1", COUNT)), *extra]


def _everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_full_disk_is_exit_2_and_publishes_nothing(tmpfs, capsys):
    disk = tmpfs("disk", "20k")  # LoadGen's logs need about 32 KB
    code = main(_bench("--scenario", "SingleStream", "--min-duration-ms", "300", "--out", str(disk / "benchs")))
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err
    # The folder named is one that still exists (the folders made for the logs are gone again).
    assert f"no space left on the device while LoadGen wrote its logs in {disk} (" in err, err
    assert f"df -h {disk})" in err and "nothing was published" in err
    assert _everything_under(disk) == []


def _limit_file_size() -> None:  # in the child: every file it writes stops at 16 KiB (EFBIG, not a full disk)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))


def test_logs_cut_without_a_full_disk_are_refused(tmp_path):
    """LoadGen's detail log (about 30 KB) cut at 16 KiB while the disk has room: still exit 2, nothing published."""
    import os
    import sys

    from tests.processes import SRC

    out = tmp_path / "benchs"
    done = subprocess.run([sys.executable, "-m", "edgezoo", *_bench("--scenario", "SingleStream",
                                                                    "--min-duration-ms", "300", "--out", str(out))],
                          capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "LoadGen's logs are incomplete (mlperf_log_detail.txt is cut short); nothing was published" in last
    assert not out.exists() or _everything_under(out) == []


@pytest.mark.parametrize("scenario", ["SingleStream", "Offline"])
def test_ctrl_c_stops_a_long_loadgen_run_at_once(tmp_path, scenario):
    """A 60 s run interrupted once LoadGen is writing its logs: exit 130 within seconds (not at the end of the run),
    no crash (std::bad_alloc, segfault), no traceback, nothing published and no staging folder left."""
    out, log = tmp_path / "benchs", tmp_path / "stderr.txt"
    with log.open("wb") as err:
        proc = edgezoo_process(_bench("--scenario", scenario, "--min-duration-ms", "60000", "--out", str(out)),
                               stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 300
        while not any(p.stat().st_size for p in out.rglob("mlperf_log_detail.txt")):  # LoadGen's run has begun
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "LoadGen did not start"
            time.sleep(0.05)
        time.sleep(1.0)  # well inside the run
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
        waited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 130, text[-3000:]  # a crash would be negative (SIGABRT / SIGSEGV)
    assert waited < 10, waited  # the run had about 58 s to go
    assert text.splitlines()[-1] == "edgezoo: interrupted; LoadGen's run stopped, nothing was published"
    assert "Traceback" not in text and "bad_alloc" not in text
    assert _everything_under(out) == []
