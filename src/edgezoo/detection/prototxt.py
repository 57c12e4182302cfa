"""TIDL meta-architecture prototxt (message `TIDLMetaArch`, protobuf text format): the `caffe_ssd` subset.

`read_meta_arch(text)` parses the text format into frozen dataclasses; `write_meta_arch(meta)` writes it back in the
layout TI's samples use, so `read_meta_arch(write_meta_arch(x)) == x`. Only field names matter in text format, so no
compiled proto is needed. Optional fields are `None` (or an empty tuple for repeated ones) when absent: presence is
kept because TIDL's importer treats a missing `step` or input size very differently from a default. The `effective_*`
properties give the values TIDL uses when a field is absent.

The reader is strict like protobuf's own text parser (which TIDL uses): an unknown field, a non-repeated field given
twice, a wrong value type or an unknown enum name is a ConfigError naming the line and the field path, e.g.
"meta_arch.prototxt:7: caffe_ssd[0].prior_box_param[2].varience: unknown field -- did you mean 'variance'?".
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, fields, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

from edgezoo.errors import ConfigError, did_you_mean


class CodeType(IntEnum):
    """Box coding (the schema default is CORNER, so always set it)."""

    CORNER = 1
    CENTER_SIZE = 2  # regression order (cx, cy, w, h)
    CORNER_SIZE = 3
    CENTER_SIZE_EXP = 4
    CENTER_SIZE_YXHW = 5  # regression order (cy, cx, h, w) as in the TF OD API
    YOLO_V5 = 6
    YOLO_X = 7
    CODE_TYPE_3DOD = 8


class ScoreConverter(IntEnum):
    IDENTITY = 0
    SIGMOID = 1
    SOFTMAX = 2


class DataLayout(IntEnum):
    SEPARATED = 0  # channel = anchor * 4 + coord (usual Caffe / TF heads)
    INTERLEAVED = 1  # channel = coord * anchors + anchor (MLPerf ResNet34-SSD)


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
_SCALARS = {"float", "int", "bool", "string"}
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
# Reader

_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[fF]?|inf(?:inity)?|nan)(?![\w.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}<>:;,\[\]])
""", re.VERBOSE)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    line: int


def _tokenize(text: str, source: str) -> list[_Tok]:
    tokens, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            snippet = text[pos:pos + 20].split("\n")[0]
            raise ConfigError(f"{source}:{line}: unexpected text {snippet!r}",
                              hint="the file must be protobuf text format (field: value, block { ... })")
        kind = m.lastgroup or ""
        if kind != "space":
            tokens.append(_Tok(kind, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.toks = _tokenize(text, source)
        self.i = 0

    def fail(self, tok: _Tok | None, message: str, hint: str | None = None) -> ConfigError:
        line = tok.line if tok else (self.toks[-1].line if self.toks else 1)
        return ConfigError(f"{self.source}:{line}: {message}", hint=hint)

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.fail(None, "unexpected end of file", hint="a block is not closed with '}'")
        self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == text:
            self.i += 1
            return True
        return False

    def message(self, cls: type, path: str, close: str | None) -> Any:
        schema = _SCHEMA[cls]
        values: dict[str, Any] = {}
        while True:
            tok = self.peek()
            if tok is None:
                if close is not None:
                    raise self.fail(None, f"{path or 'file'}: unexpected end of file, expected {close!r}")
                break
            if close is not None and tok.kind == "punct" and tok.text == close:
                self.i += 1
                break
            tok = self.take()
            if tok.kind != "ident":
                raise self.fail(tok, f"{path or 'top level'}: expected a field name, got {tok.text!r}")
            name = tok.text
            field_path = f"{path}.{name}" if path else name
            if name not in schema:
                if cls is MetaArch and name in _OTHER_BLOCKS:
                    raise self.fail(tok, f"{field_path}: edgezoo reads only caffe_ssd meta-architectures",
                                    hint="this block is valid for TIDL but not modelled here")
                raise self.fail(tok, f"{field_path}: unknown field in {cls.__name__}",
                                hint=did_you_mean(name, schema))
            kind = schema[name]
            repeated = _repeated(cls, name)
            index = len(values.get(name, ())) if repeated else None
            item_path = f"{field_path}[{index}]" if repeated else field_path
            if not repeated and name in values:
                raise self.fail(tok, f"{field_path}: non-repeated field given more than once")
            if isinstance(kind, type) and kind in _SCHEMA:
                self.accept(":")
                opener = self.take()
                if opener.text not in ("{", "<"):
                    raise self.fail(opener, f"{item_path}: expected '{{' to open the block, got {opener.text!r}")
                parsed = [self.message(kind, item_path, "}" if opener.text == "{" else ">")]
            else:
                colon = self.take()
                if colon.text != ":":
                    raise self.fail(colon, f"{field_path}: expected ':' after the field name, got {colon.text!r}")
                if repeated and self.accept("["):
                    parsed = []
                    while not self.accept("]"):
                        parsed.append(self.scalar(kind, f"{field_path}[{index + len(parsed)}]"))
                        self.accept(",")
                else:
                    parsed = [self.scalar(kind, item_path)]
            if repeated:
                values[name] = values.get(name, ()) + tuple(parsed)
            else:
                values[name] = parsed[0]
            self.accept(";") or self.accept(",")
        return cls(**values)

    def scalar(self, kind: Any, path: str) -> Any:
        tok = self.take()
        if kind == "string":
            if tok.kind != "string":
                raise self.fail(tok, f"{path}: expected a quoted string, got {tok.text!r}")
            parts = [tok]
            while (nxt := self.peek()) is not None and nxt.kind == "string":  # adjacent strings concatenate
                parts.append(self.take())
            return "".join(ast.literal_eval(p.text) for p in parts)
        if kind == "bool":
            if tok.text in ("true", "True", "t", "1"):
                return True
            if tok.text in ("false", "False", "f", "0"):
                return False
            raise self.fail(tok, f"{path}: expected true or false, got {tok.text!r}")
        if kind in ("float", "int"):
            if tok.kind != "number":
                raise self.fail(tok, f"{path}: expected a number, got {tok.text!r}")
            text = tok.text.rstrip("fF") if not tok.text.lower().startswith(("0x", "-0x", "+0x")) else tok.text
            if kind == "int":
                try:
                    return int(text, 0)
                except ValueError:
                    raise self.fail(tok, f"{path}: expected an integer, got {tok.text!r}") from None
            return float(int(text, 16)) if "x" in text.lower() else float(text)
        # enum: by name or by number
        if tok.kind == "ident":
            if tok.text in kind.__members__:
                return kind[tok.text]
            raise self.fail(tok, f"{path}: unknown {kind.__name__} {tok.text!r}",
                            hint="expected one of " + ", ".join(f"{m.name}={m.value}" for m in kind))
        if tok.kind == "number":
            try:
                return kind(int(tok.text, 0))
            except ValueError:
                pass
        raise self.fail(tok, f"{path}: expected a {kind.__name__} name or number, got {tok.text!r}",
                        hint="expected one of " + ", ".join(f"{m.name}={m.value}" for m in kind))


def read_meta_arch(text: str, source: str = "prototxt") -> MetaArch:
    """Parse TIDLMetaArch text format (caffe_ssd subset); ConfigError with line and field path on any problem."""
    return _Parser(text, source).message(MetaArch, "", None)


def load_meta_arch(path: Path) -> MetaArch:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such prototxt file", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the prototxt ({exc})") from None
    return read_meta_arch(text, source=path.name)
