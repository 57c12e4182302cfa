"""`edgezoo bench` on the real mlperf_loadgen: the summary's verdict and figures, and an AccuracyOnly log that
scores to eval's number."""

from __future__ import annotations

import json
import re

import numpy as np

from edgezoo.cli import main
from edgezoo.datasets import open_dataset
from edgezoo.evaluation.api import evaluate
from edgezoo.evaluation.subjects import bundle_subjects
from tests.evaluation.eval_helpers import bundle, labelled_dataset

COUNT = 8


def test_single_stream_performance(tmp_path, capsys):
    code = main(["bench", str(bundle("mobilenet-v1", "tflite")), "--dataset",
                 str(labelled_dataset("imagenet", "mobilenet-v1", COUNT)), "--scenario", "SingleStream",
                 "--min-duration-ms", "200", "--min-query-count", "16", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    summary = (tmp_path / "mobilenet-v1" / "tflite" / "SingleStream" / "mlperf_log_summary.txt").read_text()
    verdict = re.search(r"Result is : (VALID|INVALID)", summary).group(0)
    assert verdict in out
    latency = re.search(r"90\.0th percentile latency \(ns\)\s*:\s*(\d+)", summary).group(1)
    assert latency in out and int(latency) > 0
    assert (tmp_path / "mobilenet-v1" / "tflite" / "SingleStream" / "mlperf_log_detail.txt").is_file()


def test_offline_accuracy_log_scores_as_eval(tmp_path, capsys):
    data = labelled_dataset("coco", "ssd-mobilenet-v1", COUNT)
    folder = bundle("ssd-mobilenet-v1", "tflite")
    code = main(["bench", str(folder), "--dataset", str(data), "--scenario", "Offline", "--accuracy",
                 "--out", str(tmp_path / "bench"), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    (evaluated,) = evaluate(bundle_subjects(folder), open_dataset(data), tmp_path / "eval", progress=False)
    assert result["mode"] == "AccuracyOnly" and result["accuracy"] == evaluated.value
    # LoadGen's own log holds the records eval wrote, sample for sample.
    def records(path):
        return {e["qsl_idx"]: e["data"] for e in json.loads(path.read_text())}

    loadgen = records(tmp_path / "bench" / "ssd-mobilenet-v1" / "tflite" / "Offline-accuracy" /
                      "mlperf_log_accuracy.json")
    ours = records(tmp_path / "eval" / "ssd-mobilenet-v1" / "tflite" / "mlperf_log_accuracy.json")
    assert loadgen == ours and len(ours) == COUNT
    assert np.frombuffer(bytes.fromhex(ours[0]), np.float32).size % 7 == 0


def test_bad_option_values_are_one_line_errors(tmp_path, capsys):
    import pytest

    data = labelled_dataset("imagenet", "mobilenet-v1", COUNT)
    for option, value, match in (("--min-duration-ms", "0", "out of range"), ("--min-duration-ms", "1e3",
                                 "not a whole number"), ("--min-query-count", "-1", "out of range"),
                                 ("--count", "0", "out of range")):
        capsys.readouterr()
        code = main(["bench", str(bundle("mobilenet-v1", "tflite")), "--dataset", str(data), "--scenario",
                     "Offline", option, value, "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and match in err, (option, value, err)
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):  # argparse's own choices check
        main(["bench", "x", "--dataset", str(data), "--scenario", "Server"])


def test_offline_runs_on_every_cpu_by_default_and_on_threads_when_asked(tmp_path, capsys, monkeypatch):
    from edgezoo.graphs import runners

    seen: list[int] = []
    real = runners.check_threads
    monkeypatch.setattr(runners, "check_threads", lambda threads: seen.append(real(threads)) or seen[-1])
    data = labelled_dataset("imagenet", "mobilenet-v1", COUNT)
    for extra, expected in (([], runners.available_cpus()), (["--threads", "1"], 1)):
        seen.clear()
        code = main(["bench", str(bundle("mobilenet-v1", "onnx")), "--dataset", str(data), "--scenario", "Offline",
                     "--min-duration-ms", "200", "--min-query-count", "8", "--out", str(tmp_path), *extra])
        assert code == 0 and seen and set(seen) == {expected}, (extra, seen)
    capsys.readouterr()
    code = main(["bench", str(bundle("mobilenet-v1", "onnx")), "--dataset", str(data), "--scenario", "Offline",
                 "--threads", "0", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and "--threads 0: out of range" in err and len(err.strip().splitlines()) == 1
