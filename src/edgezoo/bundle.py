"""The artifact bundle, written atomically: out/<model-id>/<target>/.

    model.tflite | model.onnx     the converted model
    <extra files>                 e.g. meta_arch.prototxt (detection over ONNX)
    runtime_options.yaml          TIDL options that go with the model
    config.yaml                   preprocess / session / postprocess / metric, TI model-zoo style
    manifest.json                 sources + sha256, recipe + parameters, tool versions, outputs + sha256, STAND-IN flag
    verify.json                   the parity report (first key: standin)

Atomicity: everything is written into a staging folder next to the destination (same filesystem, so renames are
atomic); the recipe's scratch files live inside it too. Only a complete bundle is renamed into place; an existing
bundle is moved aside first and deleted only after the new one is in place (restored if the swap fails). Any error
before that removes the staging folder: no half bundle, no leftovers.

Parity failures: a bundle that failed verification never replaces anything at <target>/. It goes to
<target>.failed/ for inspection (replacing an older failed one), so <target>/ only ever holds a verified bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from edgezoo.errors import EdgezooError
from edgezoo.report import to_jsonable

FAILED_SUFFIX = ".failed"
STAGING_MARK = ".staging-"
MANIFEST = "manifest.json"
VERIFY = "verify.json"
CONFIG = "config.yaml"
RUNTIME_OPTIONS = "runtime_options.yaml"


class BundleError(EdgezooError):
    """The output folder cannot hold a bundle (not writable, a file in the way, ...)."""


@dataclass(frozen=True)
class BundleFile:
    name: str
    size: int
    sha256: str


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_file(path: Path, name: str | None = None) -> BundleFile:
    return BundleFile(name or path.name, path.stat().st_size, sha256_file(path))


def failed_dir(final: Path) -> Path:
    return final.with_name(final.name + FAILED_SUFFIX)


def _yaml_text(data: Any, compact: bool) -> str:
    import yaml

    # compact: short lists inline ([123.68, 116.78, 103.94]), as TI's configs write them.
    return yaml.safe_dump(to_jsonable(data), sort_keys=False, default_flow_style=None if compact else False,
                          width=120)


class BundleStaging:
    """A staging folder for one bundle; use as a context manager, `commit()` to publish it.

    `workdir` is the recipe's scratch folder (removed before publishing). Leaving the block without a commit, or
    with an exception, deletes the whole staging folder.
    """

    def __init__(self, final: Path) -> None:
        self.final = Path(final)
        self.dir = self.final.parent / f".{self.final.name}{STAGING_MARK}{uuid.uuid4().hex[:12]}"
        self.workdir = self.dir / ".work"
        self.committed: Path | None = None
        self._created: list[Path] = []  # parent folders this bundle created (removed again if nothing is published)

    def __enter__(self) -> "BundleStaging":
        if self.final.exists() and not self.final.is_dir():
            raise BundleError(f"{self.final}: exists and is not a folder", hint="remove it or choose another --out")
        parent = self.final.parent
        while not parent.exists():
            self._created.append(parent)
            parent = parent.parent
        try:
            self.workdir.mkdir(parents=True)
        except OSError as exc:
            raise BundleError(f"{self.dir.parent}: cannot create the bundle folder: {exc.strerror}",
                              hint="choose a writable --out folder") from None
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        if self.committed is None:
            for folder in self._created:  # innermost first; only if still empty
                try:
                    folder.rmdir()
                except OSError:
                    break

    # ------------------------------------------------------------------ writing
    def add_file(self, src: Path, name: str) -> BundleFile:
        """Move (or copy, when on another filesystem) `src` into the bundle as `name`."""
        dest = self.dir / name
        src = Path(src)
        if not src.is_file():
            raise BundleError(f"{src}: the recipe did not produce this file")
        if src.resolve().is_relative_to(self.dir.resolve()):
            os.replace(src, dest)
        else:
            shutil.copyfile(src, dest)
        return describe_file(dest, name)

    def add_yaml(self, name: str, data: Any, header: str = "", *, compact: bool = True) -> BundleFile:
        path = self.dir / name
        path.write_text(header + _yaml_text(data, compact), encoding="utf-8")
        return describe_file(path, name)

    def add_json(self, name: str, data: Any) -> BundleFile:
        path = self.dir / name
        path.write_text(json.dumps(to_jsonable(data), indent=2) + "\n", encoding="utf-8")
        return describe_file(path, name)

    # ------------------------------------------------------------------ publishing
    def commit(self, dest: Path | None = None) -> Path:
        """Publish the staged bundle at `dest` (default: the final folder), replacing what is there atomically."""
        dest = Path(dest or self.final)
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        _swap_in(self.dir, dest)
        self.committed = dest
        return dest


def _swap_in(src: Path, dest: Path) -> None:
    # os.replace cannot replace a non-empty folder: move the old one aside, rename the new one in, then delete the
    # old one. If the second rename fails, the old bundle goes back where it was.
    if dest.exists():
        if not dest.is_dir():
            raise BundleError(f"{dest}: exists and is not a folder", hint="remove it or choose another --out")
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:12]}")
        os.replace(dest, old)
        try:
            os.replace(src, dest)
        except OSError:
            os.replace(old, dest)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dest)


def read_manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((Path(bundle) / MANIFEST).read_text(encoding="utf-8"))
