"""TIDL meta-architecture prototxt (message `TIDLMetaArch`, protobuf text format): the `caffe_ssd` subset.

`read_meta_arch(text)` parses the text format into frozen dataclasses; `write_meta_arch(meta)` writes it back in the
layout TI's samples use, so `read_meta_arch(write_meta_arch(x)) == x`. Only field names matter in text format, so no
compiled proto is needed. Optional fields are `None` (or an empty tuple for repeated ones) when absent: presence is
kept because TIDL's importer treats a missing `step` or input size very differently from a default. The `effective_*`
properties give the values TIDL uses when a field is absent.

The text is parsed by edgezoo.detection.textproto; this module checks the tree against its schema, strictly like
protobuf's own text parser (which TIDL uses): an unknown field, a non-repeated field given twice or as a list, a
wrong value type or an unknown enum name is a ConfigError naming the line and the field path, e.g.
"meta_arch.prototxt:7: caffe_ssd[0].prior_box_param[2].varience: unknown field -- did you mean 'variance'?".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from edgezoo.core.errors import ConfigError, did_you_mean
from edgezoo.detection.codings import CodeType, DataLayout, ScoreConverter
from edgezoo.detection.textproto import Message, convert, field_error, parse, read_text_file


@dataclass(frozen=True)
class PriorBoxParam:
    """Caffe PriorBoxParameter; sizes and steps in input pixels."""

    min_size: tuple[float, ...] = ()
    max_size: tuple[float, ...] = ()
    aspect_ratio: tuple[float, ...] = ()
    flip: bool | None = None
    clip: bool | None = None
    variance: tuple[float, ...] = ()
    img_size: int | None = None
    img_h: int | None = None
    img_w: int | None = None
    step: float | None = None
    step_h: float | None = None
    step_w: float | None = None
    offset: float | None = None

    @property
    def effective_flip(self) -> bool:
        return True if self.flip is None else self.flip

    @property
    def effective_clip(self) -> bool:
        return False if self.clip is None else self.clip

    @property
    def effective_offset(self) -> float:
        return 0.5 if self.offset is None else self.offset

    def effective_steps(self) -> tuple[float | None, float | None]:
        """(step_h, step_w): `step` when given, else step_h/step_w (None when absent: TIDL exits silently)."""
        if self.step is not None:
            return self.step, self.step
        return self.step_h, self.step_w

    def image_size(self, in_height: int | None, in_width: int | None) -> tuple[int | None, int | None]:
        """(img_h, img_w) the priors are normalised by: img_h/img_w, else img_size, else the network input size."""
        h = self.img_h if self.img_h is not None else self.img_size if self.img_size is not None else in_height
        w = self.img_w if self.img_w is not None else self.img_size if self.img_size is not None else in_width
        return h, w


@dataclass(frozen=True)
class NmsParam:
    nms_threshold: float | None = None
    top_k: int | None = None  # candidates per class kept BEFORE NMS (Caffe semantics)
    eta: float | None = None


@dataclass(frozen=True)
class DetectionOutputParam:
    num_classes: int | None = None  # including the background class
    share_location: bool | None = None
    background_label_id: int | None = None
    nms_param: NmsParam | None = None
    code_type: CodeType | None = None
    variance_encoded_in_target: bool | None = None
    keep_top_k: int | None = None
    confidence_threshold: float | None = None


@dataclass(frozen=True)
class CaffeSsd:
    box_input: tuple[str, ...] = ()
    class_input: tuple[str, ...] = ()
    output: tuple[str, ...] = ()
    in_width: int | None = None
    in_height: int | None = None
    score_converter: ScoreConverter | None = None
    prior_box_param: tuple[PriorBoxParam, ...] = ()
    detection_output_param: DetectionOutputParam | None = None
    data_layout: DataLayout | None = None

    @property
    def effective_score_converter(self) -> ScoreConverter:
        return ScoreConverter.SOFTMAX if self.score_converter is None else self.score_converter


@dataclass(frozen=True)
class MetaArch:
    name: str | None = None
    caffe_ssd: tuple[CaffeSsd, ...] = ()

    def single_ssd(self, where: str = "prototxt") -> CaffeSsd:
        if len(self.caffe_ssd) != 1:
            raise ConfigError(f"{where}: expected exactly one caffe_ssd block, found {len(self.caffe_ssd)}",
                              hint="ONNX SSD (meta_arch_type 3) reads one caffe_ssd block")
        return self.caffe_ssd[0]

    def with_ssd(self, ssd: CaffeSsd) -> "MetaArch":
        return replace(self, caffe_ssd=(ssd,))


# Field kinds per message, in the order the writer emits them. A tuple default means repeated.
_SCHEMA: dict[type, dict[str, Any]] = {
    PriorBoxParam: {"min_size": "float", "max_size": "float", "aspect_ratio": "float", "flip": "bool",
                    "clip": "bool", "variance": "float", "img_size": "int", "img_h": "int", "img_w": "int",
                    "step": "float", "step_h": "float", "step_w": "float", "offset": "float"},
    NmsParam: {"nms_threshold": "float", "top_k": "int", "eta": "float"},
    DetectionOutputParam: {"num_classes": "int", "share_location": "bool", "background_label_id": "int",
                           "nms_param": NmsParam, "code_type": CodeType, "variance_encoded_in_target": "bool",
                           "keep_top_k": "int", "confidence_threshold": "float"},
    CaffeSsd: {"box_input": "string", "class_input": "string", "output": "string", "in_width": "int",
               "in_height": "int", "score_converter": ScoreConverter, "prior_box_param": PriorBoxParam,
               "detection_output_param": DetectionOutputParam, "data_layout": DataLayout},
    MetaArch: {"name": "string", "caffe_ssd": CaffeSsd},
}
# Blocks of the full schema that edgezoo does not model: named so the error says why, not "unknown field".
_OTHER_BLOCKS = {"tf_od_api_ssd", "tidl_ssd", "tidl_faster_rcnn", "tidl_yolo", "tidl_retinanet", "tidl_3dod"}


def _repeated(cls: type, name: str) -> bool:
    default = next(f.default for f in fields(cls) if f.name == name)
    return isinstance(default, tuple)


# ----------------------------------------------------------------------------------------------------------------
# Writer


def _format_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(float(value))  # shortest text that reads back to the same double
    return text if any(c in text for c in ".en") else text + ".0"


def _format_scalar(kind: Any, value: Any) -> str:
    if kind == "string":
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if kind == "bool":
        return "true" if value else "false"
    if kind == "float":
        return _format_float(value)
    if kind == "int":
        return str(int(value))
    return kind(value).name  # enum


def _write_message(msg: Any, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    for name, kind in _SCHEMA[type(msg)].items():
        value = getattr(msg, name)
        values = value if _repeated(type(msg), name) else (() if value is None else (value,))
        for item in values:
            if isinstance(kind, type) and kind in _SCHEMA:
                lines.append(f"{pad}{name} {{")
                _write_message(item, indent + 1, lines)
                lines.append(f"{pad}}}")
            else:
                lines.append(f"{pad}{name}: {_format_scalar(kind, item)}")


def write_meta_arch(meta: MetaArch) -> str:
    """The protobuf text format of `meta` (one field per line, two-space indent, enums by name)."""
    lines: list[str] = []
    _write_message(meta, 0, lines)
    return "\n".join(lines) + "\n"


def save_meta_arch(meta: MetaArch, path: Path) -> Path:
    path = Path(path)
    path.write_text(write_meta_arch(meta), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------------
# Reader: textproto's generic tree, checked against _SCHEMA


def _read(cls: type, msg: Message, path: str) -> Any:
    schema, source = _SCHEMA[cls], msg.source_name
    values: dict[str, Any] = {}
    for name in dict.fromkeys([*msg.fields, *msg.lists]):  # an empty list `name: []` has no items but is checked
        items = msg.fields.get(name, [])
        field_path = f"{path}.{name}" if path else name
        line = items[0].line if items else msg.lists[name]
        if name not in schema:
            if cls is MetaArch and name in _OTHER_BLOCKS:
                raise field_error(source, line, field_path, "edgezoo reads only caffe_ssd meta-architectures",
                                  hint="this block is valid for TIDL but not modelled here")
            raise field_error(source, line, field_path, f"unknown field in {cls.__name__}",
                              hint=did_you_mean(name, schema))
        kind = schema[name]
        if _repeated(cls, name):
            values[name] = tuple(_value(kind, item, f"{field_path}[{i}]", source) for i, item in enumerate(items))
        elif name in msg.lists:
            raise field_error(source, msg.lists[name], field_path, "a list [...] given for a non-repeated field")
        elif len(items) > 1:
            raise field_error(source, items[1].line, field_path, "non-repeated field given more than once")
        else:
            values[name] = _value(kind, items[0], field_path, source)
    return cls(**values)


def _value(kind: Any, item: Any, path: str, source: str) -> Any:
    if kind in _SCHEMA:
        return _read(kind, convert(item, "message", source, path), path)
    return convert(item, kind, source, path)


def read_meta_arch(text: str, source: str = "prototxt") -> MetaArch:
    """Parse TIDLMetaArch text format (caffe_ssd subset); ConfigError with line and field path on any problem."""
    return _read(MetaArch, parse(text, source), "")


def load_meta_arch(path: Path) -> MetaArch:
    return read_meta_arch(read_text_file(path, "prototxt file"), source=Path(path).name)
