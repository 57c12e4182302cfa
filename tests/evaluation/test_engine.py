"""The evaluation loop's preprocessing pool: its threads yield to the runtime's (a lower priority, Linux)."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from edgezoo.evaluation.engine import BACKGROUND_NICE, prepared_inputs


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_preprocessing_threads_run_below_the_runtime_and_keep_the_order():
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    seen: dict[int, int] = {}

    def preprocess(image: np.ndarray) -> np.ndarray:
        seen[threading.get_native_id()] = nice()
        return image * 2

    samples = list(range(12))
    out = list(prepared_inputs(samples, lambda i: np.full(3, i, np.float32), preprocess, workers=2))
    assert [s for s, _, _ in out] == samples and [float(t[0]) for _, t, _ in out] == [2.0 * i for i in samples]
    main = nice()
    assert threading.get_native_id() not in seen  # the work ran on the pool
    assert set(seen.values()) == {min(19, main + BACKGROUND_NICE)}
    assert nice() == main  # this thread (the runtime's caller) is left as it was
