"""The bundle folder a user's own model lands in: named after the model, never on top of another model's bundle.

`--graph a/model.onnx` and `--graph b/model.onnx` (or two frozen_inference_graph.pb named after their folders) would
both be `<out>/model/<target>/`: the second export would silently replace a bundle of a different model. When the
folder already holds a bundle whose manifest lists other sources (by sha256), the new bundle is named
`<name>-<first 8 hex of its source's sha256>` instead, and the export says so; exporting the same files again
replaces their own bundle as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def _recorded_sources(bundle: Path) -> set[str] | None:
    """sha256 of the sources a bundle's manifest lists (None: no readable manifest)."""
    try:
        manifest = json.loads((bundle / "manifest.json").read_text())
        return {str(s["sha256"]) for s in manifest.get("sources", []) if s.get("sha256")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def bundle_name(out_dir: Path, name: str, target: str, sources_sha256: Sequence[str]) -> tuple[str, str | None]:
    """(name to use, note or None): `name`, unless <out_dir>/<name>/<target> holds another model's bundle."""
    final = Path(out_dir) / name / target
    recorded = _recorded_sources(final) if final.is_dir() else None
    if recorded is None or not sources_sha256 or recorded & set(sources_sha256):
        return name, None
    unique = f"{name}-{sources_sha256[0][:8]}"
    return unique, (f"{final} holds the bundle of another model (other source files): this one is written to "
                    f"{Path(out_dir) / unique / target}")
