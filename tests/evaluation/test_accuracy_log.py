"""The accuracy log: the bytes real LoadGen writes, read back as MLPerf's accuracy scripts read it."""

from __future__ import annotations

import array
import json

import numpy as np
import pytest

from edgezoo.core.errors import DatasetError
from edgezoo.evaluation.accuracy_log import read_accuracy_log, write_accuracy_log


def _payload(index: int) -> np.ndarray:
    """Different shapes of response: empty (no detections), one label, whole detections, awkward floats."""
    sizes = [1, 0, 7, 14, 1]
    return (np.arange(sizes[index], dtype=np.float32) * np.float32(-0.1) + np.float32(index)).astype(np.float32)


def _loadgen_accuracy_log(outdir, count: int) -> bytes:
    """Run real LoadGen (AccuracyOnly, SingleStream) on a SUT answering _payload(i); return its accuracy log."""
    import mlperf_loadgen as lg

    keep = []

    def issue(queries):
        for q in queries:  # SingleStream: one at a time, completed in order
            buf = array.array("B", _payload(q.index).tobytes())
            keep.append(buf)
            ptr, n = buf.buffer_info()
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, ptr, n)])

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(count, count, lambda s: None, lambda s: None)
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.SingleStream
    settings.mode = lg.TestMode.AccuracyOnly
    log = lg.LogSettings()
    log.log_output.outdir = str(outdir)
    log.log_output.copy_summary_to_stdout = False
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, log)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    return (outdir / "mlperf_log_accuracy.json").read_bytes()


def test_written_log_is_byte_identical_to_loadgens(tmp_path):
    (tmp_path / "lg").mkdir()
    theirs = _loadgen_accuracy_log(tmp_path / "lg", count=5)
    entries = json.loads(theirs)
    assert sorted(e["qsl_idx"] for e in entries) == [0, 1, 2, 3, 4]
    assert [e["seq_id"] for e in entries] == list(range(5))
    ours = write_accuracy_log(tmp_path / "ours.json", [(e["qsl_idx"], _payload(e["qsl_idx"])) for e in entries])
    assert ours.read_bytes() == theirs


def test_round_trip_as_mlperf_scripts_parse_it(tmp_path):
    records = [(3, np.array([817], np.float32)), (0, np.zeros(0, np.float32)),
               (1, np.array([1, 0.25, 0.5, 0.75, 1.0, 0.9, 18], np.float32)), (3, np.array([1], np.float32))]
    path = write_accuracy_log(tmp_path / "mlperf_log_accuracy.json", records)
    # what tools/accuracy-*.py do, written out here: json.load, then np.frombuffer(bytes.fromhex(data), float32)
    raw = json.loads(path.read_text())
    assert [(r["seq_id"], r["qsl_idx"]) for r in raw] == [(0, 3), (1, 0), (2, 1), (3, 3)]
    # 817 = 1.595703125 * 2**9: exponent 127 + 9 = 0x88, mantissa 0.595703125 * 2**23 = 0x4C4000 -> 0x444C4000,
    # written as its little-endian bytes in uppercase hex
    assert raw[0]["data"] == "00404C44"
    for (qsl, data), r in zip(records, raw):
        np.testing.assert_array_equal(np.frombuffer(bytes.fromhex(r["data"]), np.float32), data)
    parsed = read_accuracy_log(path)  # the repeated qsl_idx 3 is dropped, as the scripts' `seen` set does
    assert [(r.qsl_idx, r.data.tolist()) for r in parsed] == [(q, d.tolist()) for q, d in records[:3]]
    assert len(read_accuracy_log(path, dedupe=False)) == 4


def test_interrupted_write_leaves_nothing(tmp_path):
    def records():
        yield 0, np.array([1], np.float32)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_accuracy_log(tmp_path / "mlperf_log_accuracy.json", records())
    assert list(tmp_path.iterdir()) == []


def test_unreadable_logs_are_named(tmp_path):
    path = tmp_path / "log.json"
    path.write_text('[\n{ "seq_id" : 0, "qsl_idx" : 0, "data" : "00')  # cut short
    with pytest.raises(DatasetError, match=r"log.json: not an accuracy log: not valid JSON"):
        read_accuracy_log(path)
    path.write_text('[{"seq_id": 0, "qsl_idx": 0, "data": "XYZ"}]')
    with pytest.raises(DatasetError, match=r"record 0: not a LoadGen record"):
        read_accuracy_log(path)
    with pytest.raises(DatasetError, match=r"cannot write the accuracy log"):
        write_accuracy_log(tmp_path / "missing" / "log.json", [])


def test_concurrent_writers_leave_one_complete_log(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "mlperf_log_accuracy.json"
    versions = [[(i, np.full(7, w, np.float32)) for i in range(300)] for w in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda records: write_accuracy_log(path, records), versions))
    parsed = [(r.qsl_idx, r.data.tolist()) for r in read_accuracy_log(path)]
    assert parsed in [[(q, d.tolist()) for q, d in v] for v in versions]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
