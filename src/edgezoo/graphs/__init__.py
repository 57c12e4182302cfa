"""Format adapters for the three model formats edgezoo reads: TF frozen GraphDef, ONNX and TFLite.

Each adapter loads a file with a clean one-line ModelFileError when it is missing, truncated or corrupt, lists the
graph's tensor names (for "did you mean" hints) and offers the small graph edits the recipes need (cut, fix batch).
Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from edgezoo.core.errors import ModelFileError


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output: name as the runtime spells it, shape (None or a string for dynamic dims), dtype."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str  # numpy dtype name: "float32", "uint8", "int64", ...

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


# Folders edgezoo is writing its own models into (a recipe's workdir): a file there that does not load was made by
# the conversion, so "fetch it again" would be wrong advice; the command's options are what to change.
_OWN_OUTPUTS: ContextVar[tuple[Path, ...]] = ContextVar("edgezoo_own_outputs", default=())


@contextmanager
def own_outputs(folder: Path) -> Iterator[None]:
    """Within this block, load errors of files under `folder` say that edgezoo wrote them."""
    token = _OWN_OUTPUTS.set((*_OWN_OUTPUTS.get(), Path(folder).resolve()))
    try:
        yield
    finally:
        _OWN_OUTPUTS.reset(token)


def is_own_output(path: Path) -> bool:
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(folder) for folder in _OWN_OUTPUTS.get())


def corrupt(path: Path, kind: str, detail: str) -> ModelFileError:
    """The standard error for a file that exists but does not parse."""
    detail = " ".join(str(detail).split())[:200] or "unreadable"
    if is_own_output(path):
        return ModelFileError(f"{Path(path).name}: the {kind} edgezoo just converted cannot be loaded ({detail})",
                              hint="the conversion options made a model the runtime refuses: use smaller sizes "
                                   "(--max-detections, --inputs, --param values) and run the command again")
    if _in_cache(path):
        return ModelFileError(f"{path}: not a valid {kind} file (truncated or corrupt: {detail})",
                              hint="delete it and fetch it again")
    # A user's own file: nothing to fetch; it is either not what it claims to be or was cut short.
    return ModelFileError(f"{path}: not a valid {kind} file (truncated or corrupt: {detail})",
                          hint=f"check that it is a {kind}; if it was cut short, export or copy it again")


def _in_cache(path: Path) -> bool:
    """Whether edgezoo's own download cache holds the file (then fetching it again is the remedy). The cache's
    root as fetch/cache.py defines it ($EDGEZOO_CACHE, else the user cache folder), read here without importing the
    fetch layer above this one."""
    import os

    env = os.environ.get("EDGEZOO_CACHE", "").strip()
    try:
        if env:
            root = Path(env).expanduser().resolve()
        else:
            import platformdirs

            root = Path(platformdirs.user_cache_dir("edgezoo", appauthor=False)).resolve()
        return Path(path).resolve().is_relative_to(root)
    except (OSError, RuntimeError):
        return False
