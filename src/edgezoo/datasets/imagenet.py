"""ImageNet's val_map.txt, read as MLPerf reads it: one "relative/path label" per line, in qsl order.

MLPerf splits each stripped line on white space into exactly two fields (python/imagenet.py) and the accuracy script
takes `int(cols[1])`; anything else makes those scripts crash or mis-score, so here it is an error naming the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import overload

from edgezoo.core.errors import DatasetError
from edgezoo.datasets.layout import Sample

NUM_LABELS = 1000
_LINE_FORMAT = "each line must be 'relative/path.JPEG label' with a label from 0 to 999"


class ValMap(Sequence[tuple[Sample, str]]):
    """val_map.txt's lines as (Sample, "val_map.txt:LINE"), each Sample made when it is asked for: every line is
    checked up front (a fast pass over the text), but a million-line file opened for its first few images does not
    build a million Samples."""

    def __init__(self, root: Path, val_map: Path, names: list[str], labels: list[int]) -> None:
        self.root, self.val_map, self.names, self.labels = root, val_map, names, labels

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, i: int) -> tuple[Sample, str]: ...
    @overload
    def __getitem__(self, i: slice) -> list[tuple[Sample, str]]: ...

    def __getitem__(self, i: int | slice) -> tuple[Sample, str] | list[tuple[Sample, str]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        index = range(len(self))[i]
        return (Sample(index=index, path=self.root / self.names[index], label=self.labels[index], image_id=None,
                       height=0, width=0), f"{self.val_map}:{index + 1}")


def read_val_map(root: Path, val_map: Path) -> ValMap:
    """Every line of val_map.txt, checked; trailing blank lines are allowed, others not."""
    try:
        text = val_map.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"{val_map}: not a text file", hint=_LINE_FORMAT) from None
    except OSError as exc:
        raise DatasetError(f"{val_map}: cannot read: {exc.strerror}") from None
    lines = text.rstrip().splitlines() if text.strip() else []
    if not lines:
        raise DatasetError(f"{val_map}: empty", hint=_LINE_FORMAT)
    names, labels = [], []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        # The common case checked with string tests only; anything else goes through _parse_line, which accepts or
        # names what is wrong (so both paths accept exactly the same lines).
        if (len(fields) == 2 and fields[1].isascii() and fields[1].isdigit() and len(fields[1]) < 4
                and not fields[0].startswith("/") and ".." not in fields[0]):
            names.append(fields[0])
            labels.append(int(fields[1]))
        else:
            sample = _parse_line(root, line, f"{val_map}:{number}", index=number - 1)
            names.append(sample.path.relative_to(root).as_posix())
            labels.append(int(sample.label or 0))
    return ValMap(root, val_map, names, labels)


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
