"""Runtime start-up notices are kept out of edgezoo's output; everything else written to fd 2 still gets through."""

from __future__ import annotations

import os
import subprocess
import sys

from edgezoo.core.native_logs import is_noise, quiet_native_logs

ONEDNN = (b"I0000 00:00:1796578771.470870    1756 port.cc:153] oneDNN custom operations are on. You may see slightly "
          b"different numerical results due to floating-point round-off errors from different computation orders.\n")


def test_known_notices_are_noise_and_nothing_else():
    assert is_noise(ONEDNN)
    assert is_noise(b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    assert is_noise(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert not is_noise(b"E0000 00:00:1796578771.470870    1756 port.cc:153] oneDNN custom operations are on.\n")
    assert not is_noise(b"Fatal Python error: Segmentation fault\n")
    assert not is_noise(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU. And then it failed\n")


def test_only_the_notices_are_dropped_at_fd_2(capfd):
    with quiet_native_logs():
        os.write(2, ONEDNN + b"RuntimeError: a real problem\n")
        print("python stderr line", file=sys.stderr)
    err = capfd.readouterr().err
    assert "oneDNN" not in err and "RuntimeError: a real problem" in err and "python stderr line" in err


def test_importing_tensorflow_through_the_cli_hook_prints_no_notice():
    code = ("import os; from edgezoo.core import native_logs; native_logs.install(); import tensorflow; "
            "os.write(2, b'after import\\n')")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"  # what the CLI sets; TF prints its notices before reading it
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().strip().splitlines() == ["after import"]
