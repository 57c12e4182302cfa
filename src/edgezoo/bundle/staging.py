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
before that removes the staging folder: no half bundle, no leftovers. A full disk anywhere in the block is one
DiskFullError naming the folder.

Concurrency: runs writing into the same output folder swap one at a time (an flock on the folder); the last one to
finish wins, each run ends with a complete bundle in place. Each run holds an flock on its own staging folder while
it lives, so the next run can tell the staging folders of killed runs (kill -9, power loss) from live ones and
removes them; a swap cut between its two renames gets its old bundle back. Ctrl-C is held back during the swap.

What may be replaced: only a folder edgezoo published, of the same kind (a marker file says which), never an
input of the running command, and nothing is published inside another output (edgezoo.bundle.outputs).

Parity failures: a bundle that failed verification never replaces anything at <target>/. It goes to
<target>.failed/ for inspection (replacing an older failed one), so <target>/ only ever holds a verified bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from edgezoo.bundle.files import CONFIG, MANIFEST, RUNTIME_OPTIONS, VERIFY  # noqa: F401 (re-exported)
from edgezoo.bundle.outputs import OutputKind, check_destination, write_marker
from edgezoo.core.atomic import OLD_MARK, not_a_folder, swap_in
from edgezoo.core.errors import BundleError, disk_full, fullest_folder, is_disk_full
from edgezoo.core.interrupts import record_completed, sigint_held
from edgezoo.core.locks import flocked, try_lock
from edgezoo.core.progress import step
from edgezoo.core.report import to_jsonable

FAILED_SUFFIX = ".failed"
STAGING_MARK = ".staging-"


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

    def __init__(self, final: Path, *, kind: OutputKind = OutputKind.BUNDLE, inputs: Iterable[Path | str] = ()) -> None:
        self.final = Path(final)
        self.kind = kind
        self.inputs = tuple(inputs)  # what this command reads: never replaced by what it publishes
        self.dir = self.final.parent / f".{self.final.name}{STAGING_MARK}{uuid.uuid4().hex[:12]}"
        self.workdir = self.dir / ".work"
        self.committed: Path | None = None
        self._created: list[Path] = []  # parent folders this bundle created (removed again if nothing is published)
        self._owner: int | None = None  # the flock on self.dir that marks this run as alive (see clean_stale)

    def __enter__(self) -> "BundleStaging":
        if not_a_folder(self.final):
            raise BundleError(f"{self.final}: exists and is not a folder", hint="remove it or choose another --out")
        check_destination(self.final, self.kind, self.inputs)  # before any work: refused now, not at the end
        parent = self.final.parent
        while not parent.exists():
            self._created.append(parent)
            parent = parent.parent
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            # Under the folder's lock, so that no other run's cleanup sees this staging folder before it is locked.
            with flocked(self.final.parent, str(self.final.parent), quiet=True):
                clean_stale(self.final.parent)
                self.workdir.mkdir(parents=True)
                self._owner = try_lock(self.dir)
        except OSError as exc:
            self._release()
            if is_disk_full(exc):
                raise disk_full(exc, self._folder_of(exc), "creating the bundle folder") from None
            raise BundleError(f"{self.dir.parent}: cannot create the bundle folder: {exc.strerror}",
                              hint="choose a writable --out folder") from None
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._release()
        if exc is not None and is_disk_full(exc):
            raise disk_full(exc, self._folder_of(exc), "writing the bundle") from None

    def _release(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        if self._owner is not None:
            os.close(self._owner)
            self._owner = None
        if self.committed is None:
            for folder in self._created:  # innermost first; only if still empty
                try:
                    folder.rmdir()
                except OSError:
                    break

    def _folder_of(self, exc: BaseException) -> Path | str:
        """The folder a full disk hit: the file's own when it lies outside the staging folder (e.g. a temp dir);
        else the bundle's folder, or its nearest existing parent (the hidden staging folder means nothing to the
        user) -- or the temp folder, when the error names no file and that is the full one. Called after _release."""
        filename = getattr(exc, "filename", None)
        if filename and not Path(filename).resolve().is_relative_to(self.dir.resolve()):
            return Path(filename).parent
        folder = self.final.parent
        while not folder.exists() and folder != folder.parent:  # the folders created for the bundle are gone again
            folder = folder.parent
        return folder if filename else fullest_folder(folder)

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
        write_marker(self.dir, self.kind)
        with flocked(self.final.parent, str(self.final.parent), quiet=True):  # one swap at a time per folder
            check_destination(dest, self.kind, self.inputs)  # again: another process may have put a folder there
            old = None
            try:
                with sigint_held():  # a swap stopped between its renames would leave no bundle in place
                    old = swap_in(self.dir, dest)
                    self.committed = dest
                    record_completed(dest)
            finally:
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
        return dest


def clean_stale(folder: Path) -> list[Path]:
    """Remove what killed runs left in `folder`; call it holding the folder's lock. Returns what it removed.

    A staging folder is stale when no process holds its flock (the kernel drops the lock of a dead process). A
    moved-aside old bundle is always stale under the lock (swaps run under it); when its bundle is missing -- the
    run died between the two renames of a swap -- it is put back instead of deleted.
    """
    removed = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if not name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            if STAGING_MARK in name:
                owner = try_lock(entry)
                if owner is None:
                    continue  # a live run is writing there
                try:
                    shutil.rmtree(entry)
                finally:
                    os.close(owner)
            elif OLD_MARK in name:
                bundle = folder / name[1:].rsplit(OLD_MARK, 1)[0]
                if bundle.exists():
                    shutil.rmtree(entry)
                else:
                    os.replace(entry, bundle)
                    step(f"restored {bundle} (a run was stopped while replacing it)")
                    continue
            else:
                continue
        except OSError:
            continue  # not ours to remove (permissions), or gone meanwhile: leave it
        removed.append(entry)
    if removed:
        step(f"removed {len(removed)} folder(s) left in {folder} by interrupted runs")
    return removed
