"""Model cards from YAML: every field validated, with the exact path in every error, e.g.
"mobilenet-v1: files[1].checksum: unknown algorithm 'sha1'". `parse_card(mapping, source)` -> ModelCard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Any

from edgezoo.core.errors import CardError
from edgezoo.zoo.schema import (Accuracy, Checksum, FormatSpec, HashAlgorithm, Labels, Mlperf, MlperfPipeline,
                                ModelCard, ModelFormat, Preprocess, PublishedFile, RecipeSpec, Target, Task,
                                TensorSpec)

_HEX_LEN = {HashAlgorithm.SHA256: 64, HashAlgorithm.MD5: 32}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")
_DTYPES = {"float32", "float16", "uint8", "int8", "int32", "int64"}
_LAYOUTS = {"NHWC", "NCHW", "NC", "N", "NDC", "NCD", "any"}


class _Node:
    """A value plus its path in the card, for precise error messages."""

    def __init__(self, value: Any, path: str, card_id: str) -> None:
        self.value, self.path, self.card_id = value, path, card_id

    def fail(self, message: str) -> CardError:
        return CardError(f"{self.card_id}: {self.path}: {message}")

    def child(self, key: str | int) -> "_Node":
        sep = f"[{key}]" if isinstance(key, int) else (f".{key}" if self.path else str(key))
        return _Node(self._get(key), f"{self.path}{sep}", self.card_id)

    def _get(self, key: str | int) -> Any:
        if isinstance(key, int):
            return self.value[key]
        return self.value.get(key, _MISSING)

    def mapping(self, allowed: set[str], required: set[str]) -> "_Node":
        if not isinstance(self.value, Mapping):
            raise self.fail(f"expected a mapping, got {type(self.value).__name__}")
        unknown = set(self.value) - allowed
        if unknown:
            raise self.fail(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(allowed))}")
        missing = required - set(self.value)
        if missing:
            raise self.fail(f"missing required field(s) {', '.join(sorted(missing))}")
        return self

    def named(self, what: str) -> dict[str, "_Node"]:
        """A free-form mapping (names chosen by the card): name -> its value's node."""
        if not isinstance(self.value, Mapping):
            raise self.fail(f"expected a mapping of {what}")
        return {str(k): self.child(k) for k in self.value}

    def items(self) -> list["_Node"]:
        if not isinstance(self.value, list):
            raise self.fail(f"expected a list, got {type(self.value).__name__}")
        return [self.child(i) for i in range(len(self.value))]

    def opt(self, key: str, default: Any = None) -> "_Node | None":
        node = self.child(key)
        return None if node.value is _MISSING or node.value is None else node

    def str(self, nonempty: bool = True) -> str:
        if not isinstance(self.value, str) or (nonempty and not self.value.strip()):
            raise self.fail(f"expected a non-empty string, got {self.value!r}")
        return self.value

    def int(self, minimum: int | None = None) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.fail(f"expected an integer, got {self.value!r}")
        if minimum is not None and self.value < minimum:
            raise self.fail(f"must be >= {minimum}, got {self.value}")
        return self.value

    def float(self) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise self.fail(f"expected a number, got {self.value!r}")
        return float(self.value)

    def choice(self, allowed: set[str] | type[Enum]) -> str:
        values = {e.value for e in allowed} if isinstance(allowed, type) else allowed
        if self.value not in values:
            raise self.fail(f"expected one of {', '.join(sorted(values))}, got {self.value!r}")
        return self.value


_MISSING = object()


def parse_checksum(node: _Node) -> Checksum:
    text = node.str()
    if text == "unknown":
        return Checksum(None, None)
    algo, sep, digest = text.partition(":")
    if not sep:
        raise node.fail(f"expected 'sha256:<hex>', 'md5:<hex>' or 'unknown', got {text!r}")
    try:
        algorithm = HashAlgorithm(algo)
    except ValueError:
        raise node.fail(f"unknown algorithm {algo!r}; use sha256 or md5") from None
    if not re.fullmatch(rf"[0-9a-f]{{{_HEX_LEN[algorithm]}}}", digest):
        raise node.fail(f"{algo} digest must be {_HEX_LEN[algorithm]} lowercase hex characters, got {digest!r}")
    return Checksum(algorithm, digest)


def _url(node: _Node) -> str:
    text = node.str()
    if not re.match(r"^(https?|file)://", text):
        raise node.fail(f"expected an http(s):// or file:// URL, got {text!r}")
    return text


def _parse_file(node: _Node) -> PublishedFile:
    node.mapping({"name", "url", "mirrors", "size", "checksum", "archive", "members", "opset", "standin", "note"},
                 {"name", "url", "checksum"})
    archive = node.opt("archive")
    members = node.opt("members")
    mirrors = node.opt("mirrors")
    size = node.opt("size")
    opset = node.opt("opset")
    standin = node.opt("standin")
    note = node.opt("note")
    return PublishedFile(
        name=node.child("name").str(),
        url=_url(node.child("url")),
        size=size.int(minimum=1) if size else None,
        checksum=parse_checksum(node.child("checksum")),
        mirrors=tuple(_url(m) for m in mirrors.items()) if mirrors else (),
        archive=archive.choice({"tgz", "tar.gz", "zip"}) if archive else None,
        members=tuple(m.str() for m in members.items()) if members else (),
        opset=opset.int(minimum=1) if opset else None,
        standin=standin.str() if standin else None,
        note=note.str(nonempty=False) if note else "",
    )


def _parse_tensor(node: _Node) -> TensorSpec:
    node.mapping({"name", "shape", "dtype", "layout", "role"}, {"name", "shape", "dtype"})
    shape: list[int | str] = []
    for dim in node.child("shape").items():
        if isinstance(dim.value, str):
            shape.append(dim.str())
        else:
            shape.append(dim.int(minimum=-1))
    layout = node.opt("layout")
    role = node.opt("role")
    return TensorSpec(
        name=node.child("name").str(),
        shape=tuple(shape),
        dtype=node.child("dtype").choice(_DTYPES),
        layout=layout.choice(_LAYOUTS) if layout else "any",
        role=role.str() if role else "",
    )


def _parse_format(node: _Node, file_names: set[str]) -> FormatSpec:
    node.mapping({"file", "member", "inputs", "outputs", "internal"}, {"file", "inputs", "outputs"})
    file_node = node.child("file")
    if file_node.str() not in file_names:
        raise file_node.fail(f"names no published file; files are {', '.join(sorted(file_names))}")
    member = node.opt("member")
    internal = node.opt("internal")
    internal_map = {k: v.str() for k, v in internal.named("role -> tensor name").items()} if internal else {}
    inputs = tuple(_parse_tensor(t) for t in node.child("inputs").items())
    outputs = tuple(_parse_tensor(t) for t in node.child("outputs").items())
    if not inputs:
        raise node.child("inputs").fail("at least one input is required")
    if not outputs:
        raise node.child("outputs").fail("at least one output is required")
    return FormatSpec(file=file_node.value, member=member.str() if member else None, inputs=inputs,
                      outputs=outputs, internal=MappingProxyType(internal_map))


def _floats(node: _Node) -> tuple[float, ...]:
    return tuple(v.float() for v in node.items())


def _parse_preprocess(node: _Node) -> Preprocess:
    node.mapping({"resize", "resize_mode", "interpolation", "crop", "color", "mean", "scale", "layout", "dtype"},
                 {"resize", "resize_mode", "interpolation", "color", "mean", "scale", "layout"})
    resize_node = node.child("resize")
    if isinstance(resize_node.value, list):
        dims = tuple(d.int(minimum=1) for d in resize_node.items())
        if len(dims) != 2:
            raise resize_node.fail("expected [height, width] or one short-side size")
        resize: int | tuple[int, int] = (dims[0], dims[1])
    else:
        resize = resize_node.int(minimum=1)
    crop = node.opt("crop")
    mean, scale = _floats(node.child("mean")), _floats(node.child("scale"))
    if len(mean) not in (1, 3):
        raise node.child("mean").fail(f"expected 1 or 3 values, got {len(mean)}")
    if len(scale) not in (1, 3):
        raise node.child("scale").fail(f"expected 1 or 3 values, got {len(scale)}")
    dtype = node.opt("dtype")
    return Preprocess(
        resize=resize,
        resize_mode=node.child("resize_mode").choice({"short_side", "direct"}),
        interpolation=node.child("interpolation").choice({"linear", "area"}),
        crop=crop.int(minimum=1) if crop else None,
        color=node.child("color").choice({"RGB", "BGR"}),
        mean=mean,
        scale=scale,
        layout=node.child("layout").choice({"NHWC", "NCHW"}),
        dtype=dtype.choice({"float32", "uint8"}) if dtype else "float32",
    )


def _parse_mlperf(node: _Node) -> Mlperf:
    node.mapping({"preprocess", "size", "score_threshold", "performance_sample_count"}, {"preprocess", "size"})
    size = tuple(d.int(minimum=1) for d in node.child("size").items())
    if len(size) != 2:
        raise node.child("size").fail("expected [height, width]")
    threshold = node.opt("score_threshold")
    if threshold is not None and not 0.0 <= threshold.float() < 1.0:
        raise threshold.fail(f"expected a score in [0, 1), got {threshold.value!r}")
    count = node.opt("performance_sample_count")
    return Mlperf(preprocess=MlperfPipeline(node.child("preprocess").choice({p.value for p in MlperfPipeline})),
                  size=(size[0], size[1]), score_threshold=threshold.float() if threshold else None,
                  performance_sample_count=count.int(minimum=1) if count else Mlperf.performance_sample_count)


def parse_card(data: Any, source: str = "") -> ModelCard:
    """Validate a card's mapping (from YAML) and build the frozen ModelCard."""
    card_id = data.get("id", "<card>") if isinstance(data, Mapping) else "<card>"
    card_id = card_id if isinstance(card_id, str) else "<card>"
    root = _Node(data, "", card_id)
    root.mapping({"id", "title", "aliases", "task", "description", "files", "formats", "preprocess", "labels",
                  "accuracy", "recipes", "tolerances", "mlperf"},
                 {"id", "title", "task", "files", "formats", "preprocess", "labels", "accuracy", "recipes"})
    id_node = root.child("id")
    if not _ID_RE.match(id_node.str()):
        raise id_node.fail(f"ids are lowercase letters, digits, '.' and '-', got {id_node.value!r}")
    aliases_node = root.opt("aliases")
    aliases = tuple(a.str() for a in aliases_node.items()) if aliases_node else ()

    files = tuple(_parse_file(f) for f in root.child("files").items())
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise root.child("files").fail("file names must be unique")

    formats_node = root.child("formats")
    formats_node.mapping({f.value for f in ModelFormat}, set())
    formats = {ModelFormat(k): _parse_format(formats_node.child(k), set(names)) for k in formats_node.value}

    labels_node = root.child("labels").mapping({"dataset", "num_classes", "offset", "map"},
                                               {"dataset", "num_classes", "offset"})
    label_map = labels_node.opt("map")
    labels = Labels(dataset=labels_node.child("dataset").choice({"imagenet", "coco"}),
                    num_classes=labels_node.child("num_classes").int(minimum=1),
                    offset=labels_node.child("offset").int(),
                    map=label_map.str() if label_map else "")

    acc = root.child("accuracy").mapping({"metric", "reference", "target", "target_fraction"},
                                         {"metric", "reference", "target", "target_fraction"})
    accuracy = Accuracy(metric=acc.child("metric").str(), reference=acc.child("reference").float(),
                        target=acc.child("target").float(), target_fraction=acc.child("target_fraction").float())
    if abs(accuracy.reference * accuracy.target_fraction - accuracy.target) > 1e-3 * max(1.0, accuracy.reference):
        raise acc.child("target").fail(
            f"{accuracy.target} is not target_fraction x reference = {accuracy.reference * accuracy.target_fraction:.4f}")

    recipes_node = root.child("recipes")
    recipes_node.mapping({t.value for t in Target}, set())
    recipes: dict[Target, RecipeSpec] = {}
    for key in recipes_node.value:
        r = recipes_node.child(key).mapping({"name", "params"}, {"name"})
        params = r.opt("params")
        if params and not isinstance(params.value, Mapping):
            raise params.fail("expected a mapping")
        recipes[Target(key)] = RecipeSpec(r.child("name").str(), MappingProxyType(dict(params.value) if params else {}))

    tol_node = root.opt("tolerances")
    tolerances = {k: v.float() for k, v in tol_node.named("name -> number").items()} if tol_node else {}

    description = root.opt("description")
    return ModelCard(
        id=id_node.value,
        title=root.child("title").str(),
        aliases=aliases,
        task=Task(root.child("task").choice(Task)),
        description=description.str(nonempty=False) if description else "",
        files=files,
        formats=MappingProxyType(formats),
        preprocess=_parse_preprocess(root.child("preprocess")),
        labels=labels,
        accuracy=accuracy,
        recipes=MappingProxyType(recipes),
        tolerances=MappingProxyType(tolerances),
        mlperf=_parse_mlperf(root.child("mlperf")) if root.opt("mlperf") else None,
        source=source,
    )
