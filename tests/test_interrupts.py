"""Ctrl-C held back during a bundle swap: a real SIGINT sent to this process inside the block is raised after it."""

from __future__ import annotations

import os
import signal

import pytest

from edgezoo.interrupts import sigint_held, tracking_completed


def test_sigint_inside_the_block_is_raised_after_it():
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_held():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append("the block ran to its end")
    assert finished == ["the block ran to its end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back


def test_completed_bundles_are_seen_by_every_open_tracker(tmp_path):
    from edgezoo.bundle import BundleStaging

    with tracking_completed() as outer:
        with tracking_completed() as inner:
            with BundleStaging(tmp_path / "m" / "onnx") as staging:
                staging.commit()
        with BundleStaging(tmp_path / "m" / "tflite") as staging:
            staging.commit()
    assert inner == [tmp_path / "m" / "onnx"]
    assert outer == [tmp_path / "m" / "onnx", tmp_path / "m" / "tflite"]
