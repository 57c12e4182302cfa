"""Ctrl-C held back during a bundle swap: a real SIGINT sent to this process inside the block is raised after it."""

from __future__ import annotations

import os
import signal

import pytest

from edgezoo.core.interrupts import sigint_held, tracking_completed


def test_sigint_inside_the_block_is_raised_after_it():
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


def test_cli_lists_the_bundles_completed_before_a_ctrl_c(tmp_path, monkeypatch, capsys):
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
