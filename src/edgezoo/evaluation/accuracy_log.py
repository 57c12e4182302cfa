"""mlperf_log_accuracy.json, byte for byte as LoadGen writes it, and read back as MLPerf's accuracy scripts read it.

LoadGen (loadgen/logging.cc, AsyncLog::LogAccuracy) writes "[" then, per completed sample,
`{ "seq_id" : N, "qsl_idx" : N, "data" : "HEX" }` preceded by "\n" (first) or ",\n" (later), then "\n]\n"; the data
is the response's bytes as uppercase hex. The accuracy scripts json.load the file, skip repeated qsl_idx and decode
`np.frombuffer(bytes.fromhex(data), float32)`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from edgezoo.core.atomic import write_text_atomically
from edgezoo.core.errors import DatasetError

ACCURACY_LOG = "mlperf_log_accuracy.json"


@dataclass(frozen=True)
class AccuracyRecord:
    seq_id: int
    qsl_idx: int
    data: np.ndarray  # float32 values (classification: [label]; detection: groups of 7)


def format_record(seq_id: int, qsl_idx: int, data: np.ndarray) -> str:
    """One record in LoadGen's text layout (data: float32 values, written as their bytes in uppercase hex)."""
    payload = np.ascontiguousarray(data, dtype=np.float32).tobytes().hex().upper()
    return f'{{ "seq_id" : {int(seq_id)}, "qsl_idx" : {int(qsl_idx)}, "data" : "{payload}" }}'


def write_accuracy_log(path: Path, records: Iterable[tuple[int, np.ndarray]]) -> Path:
    """Write (qsl_idx, float32 data) records, seq_id = their order, as LoadGen would; atomically (a temporary
    file renamed into place, so an interrupted run leaves no complete-looking log). Returns the path."""
    def write(out: TextIO) -> None:
        out.write("[")
        for seq_id, (qsl_idx, data) in enumerate(records):
            out.write((",\n" if seq_id else "\n") + format_record(seq_id, qsl_idx, data))
        out.write("\n]\n")

    return write_text_atomically(Path(path), write, "the accuracy log")


def read_accuracy_log(path: Path, *, dtype: str = "float32", dedupe: bool = True) -> list[AccuracyRecord]:
    """The records of an accuracy log as MLPerf's scripts see them: JSON, data = frombuffer(fromhex(data), dtype),
    a repeated qsl_idx skipped (dedupe; LoadGen may issue an image more than once). DatasetError when unreadable."""
    path = Path(path)
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the accuracy log: {exc.strerror}") from None
    except ValueError as exc:
        raise DatasetError(f"{path}: not an accuracy log: not valid JSON ({exc})",
                           hint="LoadGen writes mlperf_log_accuracy.json only when the run completes") from None
    if not isinstance(entries, list):
        raise DatasetError(f"{path}: not an accuracy log: expected a JSON list of records")
    records, seen = [], set()
    for number, entry in enumerate(entries):
        try:
            seq_id, qsl_idx = int(entry["seq_id"]), int(entry["qsl_idx"])
            data = np.frombuffer(bytes.fromhex(entry["data"]), np.dtype(dtype))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: record {number}: not a LoadGen record {{seq_id, qsl_idx, data (hex)}} "
                               f"({type(exc).__name__}: {exc})") from None
        if dedupe and qsl_idx in seen:
            continue
        seen.add(qsl_idx)
        records.append(AccuracyRecord(seq_id, qsl_idx, data))
    return records
