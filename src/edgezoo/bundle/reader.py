"""Reading a bundle: the one place that opens manifest.json, config.yaml and runtime_options.yaml of a bundle folder.

Eval, bench, quantize and provenance read bundles through `read_bundle(folder)`. A bundle is a user's input like
any other (it may have been edited, copied together from two bundles, or written by hand), so before any of its
files is used:

- sizes are bounded (manifest.json 16 MiB, each YAML 1 MiB) and every field is validated: types, ranges, finite
  numbers (`preprocess` sizes within the input budget, means and scales finite, `metric.label_offset_pred` an int,
  a list of ints or an int -> int map); a bad one is a ConfigError naming the file and the field;
- `session.model_path` (and every other file the bundle names) is one file INSIDE the folder: no absolute path,
  no '..', no link leading out;
- every file used (config.yaml, runtime_options.yaml, the model, meta_arch.prototxt) must be listed in the
  manifest's `outputs` with the size and sha256 it has on disk, and source files the manifest points at (the
  frozen graph `original` that tflite-int8 starts from) must match the sha256 recorded in its `sources`. A mismatch
  is exit 2 naming the file; `allow_edited=True` (the commands' --allow-edited-bundle) accepts a bundle edited on
  purpose and turns those mismatches into notes, while sizes, fields and confinement are still enforced.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgezoo import zoo
from edgezoo.bundle.files import CONFIG, MANIFEST, META_ARCH, RUNTIME_OPTIONS
from edgezoo.core.errors import ConfigError, EdgezooError
from edgezoo.preprocessing.bundle import BundlePreprocess, bundle_model_id

__all__ = ["Bundle", "BundleCheckError", "read_bundle", "read_bundle_preprocess", "read_manifest", "check_input_size",
           "CONFIG", "MANIFEST", "RUNTIME_OPTIONS", "META_ARCH"]
MODEL_SUFFIXES = (".tflite", ".onnx")
MAX_MANIFEST_BYTES = 16 << 20
MAX_YAML_BYTES = 1 << 20
# A preprocessed input holds at most 2^26 elements (the verification feed budget, recipes/params.py): a resize or
# crop beyond that cannot be a model input and would make evaluation allocate gigabytes.
MAX_INPUT_ELEMENTS = 1 << 26
MAX_SIDE = 16384
MAX_LABEL_OFFSET = 1 << 20
MAX_LABEL_MAP = 100_000
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BundleCheckError(EdgezooError):
    """A bundle's files do not match its manifest, or it names files outside its folder."""


@dataclass(frozen=True)
class Output:
    """One file the manifest lists: name inside the bundle, size, sha256."""

    name: str
    size: int
    sha256: str


@dataclass
class Bundle:
    """A bundle folder, read and checked. `model` is its model file (inside `folder`)."""

    folder: Path
    manifest: dict[str, Any]
    config: dict[str, Any]
    runtime_options: dict[str, Any]
    runtime_options_header: str
    model: Path
    model_id: str | None
    preprocess: BundlePreprocess | None
    label_offset: Any  # int | list[int] | dict[int, int] | None (metric.label_offset_pred)
    standin: bool
    allow_edited: bool = False
    model_override: Path | None = None  # read_bundle's `model`: not the bundle's own file
    notes: list[str] = field(default_factory=list)  # what --allow-edited-bundle let through
    _outputs: dict[str, Output] = field(default_factory=dict, repr=False)
    _checked: set[str] = field(default_factory=set, repr=False)

    def file(self, name: str) -> Path | None:
        """The bundle's file `name` (e.g. meta_arch.prototxt), confined and checked against the manifest; None when
        the bundle has no such file."""
        path = _inside(self.folder, name, f"{self.folder}: {name}")
        if not path.exists() and not path.is_symlink():
            return None
        self._check(name)
        return path

    def card(self) -> Any:
        """The zoo card session.model_id names; ConfigError when it names none."""
        if not self.model_id:
            raise ConfigError(f"{self.folder / CONFIG}: session.model_id is missing, so the metric and target are "
                              "unknown", hint="only bundles of zoo models can be evaluated")
        return zoo.get_card(self.model_id)

    def original(self) -> Path:
        """The frozen graph the bundle was converted from (manifest `original`), checked against the sha256 the
        manifest's `sources` record for it. BundleCheckError when it names no recorded source or the file
        changed."""
        original = self.manifest.get("original")
        source = next((s for s in _sources(self.manifest) if original and s["path"] == str(original)), None)
        if not isinstance(original, str) or source is None:
            raise BundleCheckError(f"{self.folder / MANIFEST}: 'original' ({original!r}) is none of the sources "
                                   "whose sha256 the manifest records", hint=_REEXPORT)
        return self._source(source)

    def sources(self) -> dict[str, Path]:
        """Every source the manifest records (file -> path) that is still on disk, each checked."""
        return {s["file"]: self._source(s) for s in _sources(self.manifest) if Path(s["path"]).is_file()}

    def _source(self, source: Mapping[str, Any]) -> Path:
        path = Path(source["path"])
        if not path.is_file():
            raise BundleCheckError(f"{self.folder}: the source it was converted from is gone ({path})",
                                   hint="run 'edgezoo export' again so the source is in the cache")
        self._compare(path, source["size"], source["sha256"], f"{path} (a source of {self.folder})")
        return path

    def _check(self, name: str) -> None:
        if name in self._checked:
            return
        listed = self._outputs.get(name)
        path = _inside(self.folder, name, f"{self.folder}: {name}")
        if not path.is_file():  # a FIFO or a device would block or never end while hashed
            raise BundleCheckError(f"{path}: not a regular file", hint=_REEXPORT)
        if listed is None:
            self._mismatch(f"{path}: not listed in {MANIFEST}'s outputs, so it was not written with this bundle")
        else:
            self._compare(path, listed.size, listed.sha256, str(path))
        self._checked.add(name)

    def _compare(self, path: Path, size: int, sha256: str, what: str) -> None:
        actual = path.stat().st_size
        if actual != size:
            self._mismatch(f"{what}: {actual:,} bytes, the manifest records {size:,}")
        elif file_sha256(path) != sha256:
            self._mismatch(f"{what}: its sha256 differs from the one the manifest records")

    def _mismatch(self, message: str) -> None:
        if self.allow_edited:
            self.notes.append(f"edited bundle accepted: {message}")
            return
        raise BundleCheckError(f"{message}; edgezoo uses a bundle's files only as its manifest records them",
                               hint="export the bundle again, or pass --allow-edited-bundle if you edited it on "
                                    "purpose")


_REEXPORT = "export the bundle again with 'edgezoo export'"


def read_bundle(folder: Path | str, *, allow_edited: bool = False, model: Path | None = None) -> Bundle:
    """Read and check the bundle in `folder` (see the module doc). `model`: evaluate another model file in this
    bundle's clothes (quantize's previews and probes, files edgezoo itself wrote): taken as given."""
    given = Path(folder)
    if not given.is_dir():
        raise ConfigError(f"{given}: not a bundle folder",
                          hint="point at a folder written by 'edgezoo export' (it holds config.yaml)")
    root = given.resolve()
    if not (root / CONFIG).is_file():
        raise ConfigError(f"{given}: no {CONFIG}, so its preprocessing is unknown",
                          hint="point at a bundle folder written by 'edgezoo export' (it holds config.yaml)")
    manifest = read_manifest(root)
    bundle = Bundle(folder=root, manifest=manifest, config={}, runtime_options={}, runtime_options_header="",
                    model=root, model_id=None, preprocess=None, label_offset=None,
                    standin=bool(manifest.get("standin")), allow_edited=allow_edited,
                    _outputs={o.name: o for o in _outputs(manifest, root)})
    # The YAML files are checked against the manifest before they are parsed, the model before it is loaded.
    bundle._check(CONFIG)
    config = _mapping(_read_yaml(root, CONFIG, required=True), root / CONFIG)
    if (root / RUNTIME_OPTIONS).exists() or (root / RUNTIME_OPTIONS).is_symlink():
        bundle._check(RUNTIME_OPTIONS)
    options_raw = _read_yaml(root, RUNTIME_OPTIONS, required=False)
    options = {} if options_raw is None else _mapping(options_raw, root / RUNTIME_OPTIONS)
    session = config.get("session")
    if not isinstance(session, Mapping) or not isinstance(config.get("preprocess"), Mapping):
        raise ConfigError(f"{root / CONFIG}: no 'session' and 'preprocess' sections",
                          hint="config.yaml must be the one 'edgezoo export' writes")
    model_path = _model_path(root, session.get("model_path"))
    model_id = bundle_model_id(config)
    if model_id is not None and not re.fullmatch(r"[\w.+-]{1,128}", model_id):
        raise ConfigError(f"{root / CONFIG}: session.model_id {model_id!r} is not a model id")
    preprocess = BundlePreprocess.from_config(config, str(root / CONFIG))
    _check_preprocess(preprocess, root / CONFIG)
    bundle.config, bundle.runtime_options = config, options
    bundle.runtime_options_header = _header(root / RUNTIME_OPTIONS)
    bundle.model_id, bundle.preprocess = model_id, preprocess
    bundle.label_offset = _label_offset(config.get("metric"), root / CONFIG)
    if model is None:
        bundle._check(str(model_path.relative_to(root)))
        bundle.model = model_path
    else:
        bundle.model = bundle.model_override = Path(model)
    return bundle


def read_manifest(folder: Path) -> dict[str, Any]:
    """A bundle's manifest.json as a JSON object (bounded size); BundleCheckError when missing or unreadable."""
    path = Path(folder) / MANIFEST
    try:
        if path.is_symlink() or not path.is_file():
            raise FileNotFoundError
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise BundleCheckError(f"{path}: larger than {MAX_MANIFEST_BYTES >> 20} MiB, no manifest edgezoo wrote",
                                   hint=_REEXPORT)
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleCheckError(f"{folder}: no {MANIFEST}, so this is not a bundle 'edgezoo export' wrote",
                               hint="point at a bundle folder written by 'edgezoo export'") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise BundleCheckError(f"{path}: unreadable ({' '.join(str(exc).split())[:150]})", hint=_REEXPORT) from None
    if not isinstance(data, dict):
        raise BundleCheckError(f"{path}: not a manifest object", hint=_REEXPORT)
    return data


def read_bundle_preprocess(folder: Path | str) -> BundlePreprocess:
    """The preprocessing of a bundle folder (the bundle read and checked as `read_bundle` does)."""
    return read_bundle(folder).preprocess


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# files and paths


def _inside(root: Path, name: Any, where: str) -> Path:
    """`root / name` for a plain relative name that stays in `root` (links resolved); BundleCheckError otherwise."""
    if not isinstance(name, str) or not name or "\x00" in name or Path(name).is_absolute():
        raise BundleCheckError(f"{where}: {name!r} is not a file name inside the bundle",
                               hint="a bundle names its files relative to its folder")
    path = root / name
    if not path.resolve().is_relative_to(root) or ".." in Path(name).parts:
        raise BundleCheckError(f"{where}: {name!r} leads out of the bundle folder {root}",
                               hint="a bundle uses only the files inside its folder")
    return path


def _model_path(root: Path, name: Any) -> Path:
    path = _inside(root, name, f"{root / CONFIG}: session.model_path")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ConfigError(f"{root / CONFIG}: session.model_path {name!r} is not a .tflite or .onnx model")
    if not path.is_file():
        raise ConfigError(f"{root}: config.yaml names model {name!r}, which is not in the bundle",
                          hint="point at a bundle folder written by 'edgezoo export'")
    return path


def _read_yaml(root: Path, name: str, *, required: bool) -> Any:
    import yaml

    path = _inside(root, name, str(root / name))
    if not path.is_file():
        if required:
            raise ConfigError(f"{root}: no {name}, so its preprocessing is unknown",
                              hint="point at a bundle folder written by 'edgezoo export' (it holds config.yaml)")
        return None
    if path.stat().st_size > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_YAML_BYTES >> 20} MiB, not a file edgezoo wrote",
                          hint=_REEXPORT)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())[:200]}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _mapping(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a mapping", hint=_REEXPORT)
    return data


def _header(path: Path) -> str:
    """The comment lines at the top of a YAML file (kept when quantize writes a new runtime_options.yaml)."""
    if not path.is_file():
        return ""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "".join(line + "\n" for line in lines if line.startswith("#"))


def _outputs(manifest: Mapping[str, Any], root: Path) -> list[Output]:
    where = f"{root / MANIFEST}: outputs"
    entries = manifest.get("outputs", [])
    if not isinstance(entries, list):
        raise BundleCheckError(f"{where}: not a list", hint=_REEXPORT)
    found = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise BundleCheckError(f"{where}[{i}]: not an object", hint=_REEXPORT)
        name, size, sha = entry.get("name"), entry.get("size"), entry.get("sha256")
        _inside(root, name, f"{where}[{i}].name")
        if not _is_int(size) or size < 0 or not isinstance(sha, str) or not _SHA256.match(sha):
            raise BundleCheckError(f"{where}[{i}]: size {size!r} / sha256 {sha!r} are not a byte count and a "
                                   "sha256", hint=_REEXPORT)
        found.append(Output(name, size, sha))
    return found


def _sources(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The manifest's source entries that carry a path, size and sha256 (others cannot be checked: skipped)."""
    entries = manifest.get("sources")
    if not isinstance(entries, list):
        return []
    return [dict(s) for s in entries if isinstance(s, Mapping) and isinstance(s.get("path"), str)
            and isinstance(s.get("file"), str) and _is_int(s.get("size")) and isinstance(s.get("sha256"), str)]


# ----------------------------------------------------------------------------------------------------------------
# fields


def _check_preprocess(pre: Any, path: Path) -> None:
    """Bounds BundlePreprocess itself does not check: sizes within the input budget, finite normalisation."""
    for key, size in (("resize", pre.resize), ("crop", pre.crop)):
        if size is None:
            continue
        if max(size) > MAX_SIDE or size[0] * size[1] * 3 > MAX_INPUT_ELEMENTS:
            raise ConfigError(f"{path}: preprocess.{key} {list(size)} is larger than any model input (at most "
                              f"{MAX_SIDE} a side and {MAX_INPUT_ELEMENTS:,} elements)", hint=_REEXPORT)
    if pre.crop is not None and (pre.crop[0] > pre.resize[0] or pre.crop[1] > pre.resize[1]):
        raise ConfigError(f"{path}: preprocess.crop {list(pre.crop)} is larger than the resized image "
                          f"{list(pre.resize)}", hint=_REEXPORT)
    for key, values in (("input_mean", pre.mean), ("input_scale", pre.scale)):
        bad = [v for v in values if not math.isfinite(v) or abs(v) > 1e6]
        if bad:
            raise ConfigError(f"{path}: {key} {list(values)}: {bad[0]!r} is not a finite number of sensible size",
                              hint=_REEXPORT)
    if any(v == 0 for v in pre.scale):
        raise ConfigError(f"{path}: input_scale {list(pre.scale)}: a zero scale erases the input", hint=_REEXPORT)


def check_input_size(bundle: Bundle, shape: Sequence[Any]) -> None:
    """ConfigError when the preprocessing's image size (crop, else a direct resize) is not the model input's."""
    pre = bundle.preprocess
    size = pre.crop or (pre.resize if pre.resize_mode == "direct" else None)
    if size is None or len(shape) != 4:
        return
    model_hw = tuple(shape[2:4] if pre.layout == "NCHW" else shape[1:3])
    if all(isinstance(d, int) and d > 0 for d in model_hw) and tuple(size) != model_hw:
        raise ConfigError(f"{bundle.folder / CONFIG}: preprocess gives {size[0]}x{size[1]} images, the model "
                          f"{bundle.model.name} takes {model_hw[0]}x{model_hw[1]}", hint=_REEXPORT)


def _label_offset(metric: Any, path: Path) -> Any:
    """metric.label_offset_pred: None, an int, a list of ints or an int -> int mapping, each bounded."""
    if metric is None:
        return None
    if not isinstance(metric, Mapping):
        raise ConfigError(f"{path}: metric must be a mapping, got {_short(metric)}", hint=_REEXPORT)
    value = metric.get("label_offset_pred")
    where = f"{path}: metric.label_offset_pred"
    if value is None:
        return None
    if _is_int(value):
        ints: Sequence[Any] = [value]
    elif isinstance(value, Mapping):
        ints = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        ints = value
    else:
        raise ConfigError(f"{where}: {_short(value)} is not an int, a list of ints or an int -> int mapping",
                          hint=_REEXPORT)
    if len(ints) > 2 * MAX_LABEL_MAP or not all(_is_int(v) and abs(v) <= MAX_LABEL_OFFSET for v in ints):
        raise ConfigError(f"{where}: {_short(value)} must hold ints within +-{MAX_LABEL_OFFSET:,} "
                          f"(at most {MAX_LABEL_MAP:,} labels)", hint=_REEXPORT)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
