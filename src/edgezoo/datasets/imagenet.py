"""ImageNet's val_map.txt, read as MLPerf reads it: one "relative/path label" per line, in qsl order.

MLPerf splits each stripped line on white space into exactly two fields (python/imagenet.py) and the accuracy script
takes `int(cols[1])`; anything else makes those scripts crash or mis-score, so here it is an error naming the line.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from edgezoo.core.errors import DatasetError
from edgezoo.datasets.layout import Sample

NUM_LABELS = 1000
_LINE_FORMAT = "each line must be 'relative/path.JPEG label' with a label from 0 to 999"


def read_val_map(root: Path, val_map: Path) -> list[tuple[Sample, str]]:
    """Every line of val_map.txt as (Sample, "val_map.txt:LINE"); trailing blank lines are allowed, others not."""
    try:
        text = val_map.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"{val_map}: not a text file", hint=_LINE_FORMAT) from None
    except OSError as exc:
        raise DatasetError(f"{val_map}: cannot read: {exc.strerror}") from None
    lines = text.rstrip().splitlines() if text.strip() else []
    if not lines:
        raise DatasetError(f"{val_map}: empty", hint=_LINE_FORMAT)
    entries = []
    for number, line in enumerate(lines, start=1):
        where = f"{val_map}:{number}"
        entries.append((_parse_line(root, line, where, index=number - 1), where))
    return entries


def _parse_line(root: Path, line: str, where: str, *, index: int) -> Sample:
    fields = line.split()
    if len(fields) != 2:
        raise DatasetError(f"{where}: expected 2 fields, found {len(fields)} in {line.strip()[:80]!r}",
                           hint=_LINE_FORMAT + " (paths cannot contain spaces)")
    name, label_text = fields
    try:
        label = int(label_text)
    except ValueError:
        raise DatasetError(f"{where}: label {label_text!r} is not a whole number", hint=_LINE_FORMAT) from None
    if not 0 <= label < NUM_LABELS:
        raise DatasetError(f"{where}: label {label} is out of range", hint=_LINE_FORMAT)
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise DatasetError(f"{where}: image path {name!r} must be relative to the dataset folder, without '..'",
                           hint=_LINE_FORMAT)
    return Sample(index=index, path=root / relative, label=label, image_id=None, height=0, width=0)
