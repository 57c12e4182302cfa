"""Ctrl-C held back during a bundle swap: a real SIGINT sent to this process inside the block is raised after it."""

from __future__ import annotations

import os
import signal

import pytest

from edgezoo.core.interrupts import sigint_held, tracking_completed


def test_sigint_inside_the_block_is_raised_after_it(default_sigint):
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_held():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append("the block ran to its end")
    assert finished == ["the block ran to its end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back


def test_completed_bundles_are_seen_by_every_open_tracker(tmp_path):
    from edgezoo.bundle.staging import BundleStaging

    with tracking_completed() as outer:
        with tracking_completed() as inner:
            with BundleStaging(tmp_path / "m" / "onnx") as staging:
                staging.commit()
        with BundleStaging(tmp_path / "m" / "tflite") as staging:
            staging.commit()
    assert inner == [tmp_path / "m" / "onnx"]
    assert outer == [tmp_path / "m" / "onnx", tmp_path / "m" / "tflite"]


def test_cli_lists_the_bundles_completed_before_a_ctrl_c(tmp_path, monkeypatch, capsys, default_sigint):
    """Any command (demo, ...): exit 130 and the completed bundles named, when the command does not say more."""
    from edgezoo.bundle.staging import BundleStaging
    from edgezoo.cli import main
    from edgezoo.commands import zoo_cmds

    def one_bundle_then_ctrl_c(_args):
        with BundleStaging(tmp_path / "m" / "onnx") as staging:
            staging.commit()
        os.kill(os.getpid(), signal.SIGINT)  # lands in the next bytecode: a Ctrl-C during the next model

    monkeypatch.setattr(zoo_cmds, "run_list", one_bundle_then_ctrl_c)
    assert main(["list"]) == 130
    err = capsys.readouterr().err
    assert err == f"edgezoo: interrupted; the completed bundles are kept: {tmp_path / 'm' / 'onnx'}\n"
    assert (tmp_path / "m" / "onnx").is_dir()


@pytest.mark.parametrize("command, last", [
    (["eval", "mobilenet-v1", "--standin", "--standin-variant", "reduced", "--offline"], "subset: 4 of 50,000"),
    (["export", "mobilenet-v1", "--to", "onnx", "--standin", "--standin-variant", "reduced", "--offline"],
     "1 exported, 0 failed"),
], ids=["eval-table", "export-report"])
def test_ctrl_c_after_the_final_output_leaves_the_result(tmp_path, command, last):
    """Ctrl-C pressed again and again from the moment the final line is out until the process is gone (interpreter
    teardown: TensorFlow's Session.__del__, thread joins): the exit code stays the command's, no traceback."""
    import subprocess
    import time

    from tests.evaluation.eval_helpers import CACHE, labelled_dataset, original
    from tests.processes import edgezoo_process

    original("mobilenet-v1")  # the stand-in original in the helpers' cache, so the run itself is short
    data = labelled_dataset("imagenet", "mobilenet-v1", 4)
    argv = [*command, *(["--dataset", str(data)] if command[0] == "eval" else []), "--out", str(tmp_path / "o")]
    err_path = tmp_path / "stderr.txt"
    with err_path.open("wb") as err:
        proc = edgezoo_process(argv, stdout=subprocess.PIPE, stderr=err, env={"EDGEZOO_CACHE": str(CACHE)})
    seen = []
    for line in proc.stdout:
        seen.append(line.decode())
        if last in seen[-1]:
            break
    sent = 0
    while proc.poll() is None:  # from the final line to the process's end
        proc.send_signal(signal.SIGINT)
        sent += 1
        time.sleep(0.003)
    proc.stdout.close()
    text = err_path.read_text()
    assert last in "".join(seen), text[-2000:]
    assert sent > 0 and proc.returncode == 0, (sent, text[-2000:])
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    # A Ctrl-C landing inside the export command after its report (before it returns) gets export's own note.
    notes = [line for line in text.splitlines() if "interrupted" in line]
    assert notes in ([], [f"edgezoo: interrupted after the export had completed; the result stands: "
                          f"{tmp_path / 'o' / 'mobilenet-v1' / 'onnx'}"]), notes
