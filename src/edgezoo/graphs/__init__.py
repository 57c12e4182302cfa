"""Format adapters for the three model formats edgezoo reads: TF frozen GraphDef, ONNX and TFLite.

Each adapter loads a file with a clean one-line ModelFileError when it is missing, truncated or corrupt, lists the
graph's tensor names (for "did you mean" hints) and offers the small graph edits the recipes need (cut, fix batch).
Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgezoo.errors import ModelFileError


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output: name as the runtime spells it, shape (None or a string for dynamic dims), dtype."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str  # numpy dtype name: "float32", "uint8", "int64", ...

    @property
    def static_shape(self) -> bool:
        return all(isinstance(d, int) and d >= 0 for d in self.shape)


def base_name(name: str) -> str:
    """A TF/tf2onnx tensor name without its ':0' output index (node names and tensor names compare equal)."""
    head, sep, tail = name.rpartition(":")
    return head if sep and tail.isdigit() else name


def ensure_readable(path: Path, kind: str) -> bytes:
    """The file's bytes, or a ModelFileError naming it when it does not exist or is empty."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such {kind} file", hint="check the path")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, expected a {kind} file")
    data = path.read_bytes()
    if not data:
        raise ModelFileError(f"{path}: empty {kind} file", hint="the download or conversion was interrupted; redo it")
    return data


def corrupt(path: Path, kind: str, detail: str) -> ModelFileError:
    """The standard error for a file that exists but does not parse."""
    detail = " ".join(str(detail).split())[:200] or "unreadable"
    return ModelFileError(f"{path}: not a valid {kind} file (truncated or corrupt: {detail})",
                          hint="delete it and fetch or export it again")
