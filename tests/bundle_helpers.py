"""Bundles edited the way a user (or an attacker) would: files changed, and optionally the manifest re-signed with
their new sha256 so that only the field checks stand between the edit and the code that reads it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml


def reseal(folder: Path, *names: str) -> None:
    """Record the current size and sha256 of `names` (default: every file listed) in the bundle's manifest."""
    path = Path(folder) / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {"outputs": []}
    listed = {o["name"]: o for o in manifest["outputs"]}
    for name in names or list(listed):
        data = (Path(folder) / name).read_bytes()
        listed[name] = {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest["outputs"] = list(listed.values())
    path.write_text(json.dumps(manifest, indent=2))


def edit_config(folder: Path, change: Any, *, seal: bool = True) -> dict[str, Any]:
    """Apply `change(config)` to the bundle's config.yaml (and reseal it); returns the new config."""
    path = Path(folder) / "config.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    if seal:
        reseal(folder, "config.yaml")
    return config
