"""Real SSD structures, as the world's exporters write them, for the tests.

The TF Object Detection API (TF1 and TF2 builders and exporters), torchvision and torch.onnx built these graphs
once (tests/structures/regenerate/, outside the product's dependencies); what is committed under data/<name>/ is
each export with its weights stripped. `materialize` writes what the user would have — an export folder, a
SavedModel folder, a model.onnx — with seeded weights calibrated on photographs (calibrate.py): activations O(1)
through the network and a few confident detections per photograph, so parity checks are not trivially met.

    from tests.structures import STRUCTURES, materialize, materialized
    path = materialize("tv-ssdlite320-c91", tmp_path)   # -> tmp_path/tv-ssdlite320-c91/model.onnx
    path = materialized("tv-ssdlite320-c91")            # the same, built once per test process (read-only!)

Only the product's own environment is needed at test time (numpy, onnx, onnxruntime, tensorflow, scikit-image).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from tests.structures.catalog import STRUCTURES, Route, Structure

__all__ = ["STRUCTURES", "Route", "Structure", "materialize", "materialized", "structure"]


def structure(name: str) -> Structure:
    try:
        return STRUCTURES[name]
    except KeyError:
        raise KeyError(f"no structure {name!r}; known: {', '.join(STRUCTURES)}") from None


def materialize(name: str, dest_dir: Path | str, seed: int = 0) -> Path:
    """Write structure `name` with seeded weights into dest_dir/<name>/; returns the path a user would pass
    (model.onnx, or the export / SavedModel folder). Seed 0 is served from this process's cache."""
    dest = Path(dest_dir) / name
    if dest.exists():
        raise FileExistsError(dest)
    if seed == 0:
        cached = materialized(name)
        root = _root_of(cached, name)
        shutil.copytree(root, dest)
        return dest / cached.relative_to(root)
    from tests.structures.build import build

    return build(structure(name), dest, seed)


@functools.lru_cache(maxsize=None)
def materialized(name: str, seed: int = 0) -> Path:
    """Structure `name` materialised once per test process; callers must not modify it."""
    from tests.structures.build import build

    root = Path(tempfile.mkdtemp(prefix="edgezoo-structure-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # full-size ones are 100+ MB
    return build(structure(name), root / name, seed)


def _root_of(path: Path, name: str) -> Path:
    for parent in (path, *path.parents):
        if parent.name == name:
            return parent
    raise ValueError(path)
