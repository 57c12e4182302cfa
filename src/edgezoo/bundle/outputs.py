"""What edgezoo may replace when it publishes a folder: only its own output of the same kind, never an input.

Every folder edgezoo publishes (a bundle, evaluation results, LoadGen logs) carries a marker file naming its kind.
Publishing at a destination then follows one rule, checked before any work starts and again under the folder's
lock just before the swap (edgezoo.bundle.staging.BundleStaging):

- a destination that is, or holds, an input of the running command (the bundle being evaluated, the graph being
  exported, the calibration images) is never replaced;
- nothing is published inside another edgezoo output (LoadGen logs inside a bundle, a quantized bundle inside its
  float bundle): a published folder is a leaf, its manifest lists all its files;
- an existing destination is replaced only when its marker names the same kind (bundles written before the marker
  existed are recognised by their manifest's edgezoo_version); a user's folder, a link, or another kind of output
  stays, and the command stops (exit 2) naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

from edgezoo import __version__
from edgezoo.bundle.files import MANIFEST
from edgezoo.core.errors import EdgezooError, ModelFileError

MARKER = ".edgezoo-output.json"


class OutputKind(str, Enum):
    BUNDLE = "bundle"  # export, quantize
    EVAL = "evaluation results"  # eval
    BENCH = "LoadGen logs"  # bench


class OutputFolderError(EdgezooError):
    """A destination folder edgezoo must not replace or write into."""


MAX_NAME = 128
_UNSAFE = re.compile(r"[^\w.+-]")  # letters and digits of any script, '_', '.', '+', '-'


def safe_name(name: str, source: Path | str) -> str:
    """A folder name derived from a file's name (a bundle's model id), that stays one folder under --out: other
    characters become '_', leading dots go (no '..', no hidden folder); ModelFileError when nothing is left."""
    cleaned = _UNSAFE.sub("_", name).lstrip(".")[:MAX_NAME]
    if not cleaned.strip("._-"):
        raise ModelFileError(f"{source}: its name {name!r} cannot name an output folder",
                             hint="rename the file (letters or digits before the extension)")
    return cleaned


def write_marker(folder: Path, kind: OutputKind) -> None:
    (Path(folder) / MARKER).write_text(json.dumps({"kind": kind.name.lower(), "edgezoo_version": __version__}) + "\n",
                                      encoding="utf-8")


def kind_of(folder: Path) -> OutputKind | None:
    """The kind of edgezoo output `folder` is, or None (not a folder edgezoo published)."""
    folder = Path(folder)
    marker = folder / MARKER
    try:
        if marker.is_file() and not marker.is_symlink():
            if marker.stat().st_size > 4096:
                return None
            return OutputKind[str(json.loads(marker.read_text(encoding="utf-8"))["kind"]).upper()]
        legacy = folder / MANIFEST
        if legacy.is_file() and not legacy.is_symlink() and legacy.stat().st_size < (16 << 20):
            data = json.loads(legacy.read_text(encoding="utf-8"))
            return OutputKind.BUNDLE if isinstance(data, dict) and "edgezoo_version" in data else None
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    return None


def check_destination(dest: Path, kind: OutputKind, inputs: Iterable[Path | str] = ()) -> None:
    """OutputFolderError (one line naming the folder) unless publishing `kind` at `dest` may replace what is there."""
    dest = Path(dest)
    real = dest.resolve()
    sources = sorted(((Path(item).resolve(), item) for item in inputs), key=lambda s: s[0] != real)  # "is" first
    for source, item in sources:
        if source == real or source.is_relative_to(real):
            what = "is" if source == real else "holds"
            raise OutputFolderError(f"{dest}: {what} {item}, an input of this command; publishing the {kind.value} "
                                    f"there would replace it", hint="choose another --out folder")
    for parent in real.parents:
        found = kind_of(parent)
        if found is not None:
            raise OutputFolderError(f"{dest}: lies inside {parent}, {_a(found)} edgezoo wrote; edgezoo writes "
                                    f"nothing into its outputs", hint="choose an --out folder outside it")
    if dest.is_symlink():
        raise OutputFolderError(f"{dest}: is a link; edgezoo replaces only folders it wrote",
                                hint="remove the link or choose another --out folder")
    if not dest.exists() or (dest.is_dir() and not any(dest.iterdir())):
        return  # nothing there to lose
    found = kind_of(dest)
    if found is not kind:
        what = f"it holds {_a(found)}" if found else "edgezoo did not write it"
        raise OutputFolderError(f"{dest}: exists and {what}; edgezoo replaces only {kind.value} it wrote there",
                                hint="choose another --out folder, or move that folder away")


def _a(kind: OutputKind) -> str:
    return "a bundle" if kind is OutputKind.BUNDLE else kind.value
