"""A small reader for protobuf text format (pipeline.config, meta-architecture prototxts) without their .proto files.

Text format only needs field names, so the TF Object Detection API's and TIDL's schemas are not required: the text
is parsed into a generic tree (`Message`: field name -> list of values, in order). Callers then read the fields they
use, either with Message's typed accessors (pipeline_config: unknown fields are kept and ignored, as a reader of the
real schema would do for fields it does not ask for) or value by value with `convert` against their own schema
(prototxt: strict, with indexed field paths).

Every error has one shape, "source:line: field.path: what is wrong" (line and path when known), e.g.
"pipeline.config:10: model.ssd.num_classes: expected an integer, got 'ninety'".
The syntax is protobuf's: `name: value`, `name { ... }` or `name: < ... >`, `name: [v, ...]` for repeated fields,
`#` comments, optional `,`/`;` separators, adjacent string literals concatenated, C escapes in strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from edgezoo.core.errors import ConfigError

_STRING = r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""
_TOKEN = re.compile(rf"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>{_STRING})
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?(?![\w.]))
  | (?P<ident>[-+]?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{{}}<>:\[\],;/])
""", re.VERBOSE)


def field_error(source: str, line: int | None, path: str, message: str, hint: str | None = None) -> ConfigError:
    """The one error shape of text-format readers: "source:line: field.path: message" (line/path when known)."""
    where = f"{source}:{line}" if line else source
    if path:
        where += f": {path}"
    return ConfigError(f"{where}: {message}", hint=hint)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    line: int


@dataclass(frozen=True)
class Scalar:
    """A scalar field value as written: kind is 'string', 'number' or 'ident' (enum names, true/false, inf).

    For adjacent string literals ("a" "b"), text holds all of them as written; `convert` joins them."""

    kind: str
    text: str
    line: int


@dataclass
class Message:
    """One message block: its fields in order of appearance (repeated fields collect every occurrence).

    `line` is the line of the field name that opens the block (1 for the file itself); `lists` maps the fields
    written with list syntax (`name: [...]`, valid for repeated fields only) to the line of the first such list."""

    path: str = ""
    line: int = 0
    fields: dict[str, list[Any]] = field(default_factory=dict)
    source_name: str = "config"  # the file, for error messages
    lists: dict[str, int] = field(default_factory=dict)

    # -- access with path-precise errors ------------------------------------------------------------------------

    def _where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self.fields

    def which(self, names: tuple[str, ...]) -> str | None:
        """The name of the one-of member that is set (the last one written wins, as protobuf does)."""
        present = [n for n in self.fields if n in names]
        return present[-1] if present else None

    def _one(self, name: str, kind: Any, default: Any) -> Any:
        """The last value written for `name` (protobuf's rule for a non-repeated field), converted to `kind`."""
        values = self.fields.get(name)
        if not values:
            if default is None:
                raise field_error(self.source_name, None, self._where(name), "missing",
                                  hint=f"fields present in {self.path or 'the file'}: "
                                       + (", ".join(self.fields) or "none"))
            return default
        return convert(values[-1], kind, self.source_name, self._where(name))

    def _all(self, name: str, kind: Any) -> list[Any]:
        return [convert(v, kind, self.source_name, self._where(name)) for v in self.fields.get(name, [])]

    def message(self, name: str, required: bool = True) -> "Message | None":
        if not required and not self.fields.get(name):
            return None
        return self._one(name, "message", None)

    def messages(self, name: str) -> list["Message"]:
        return self._all(name, "message")

    def float(self, name: str, default: float | None = None) -> float:
        return self._one(name, "float", default)

    def floats(self, name: str) -> list[float]:
        return self._all(name, "float")

    def int(self, name: str, default: int | None = None) -> int:
        return self._one(name, "int", default)

    def ints(self, name: str) -> list[int]:
        return self._all(name, "int")

    def bool(self, name: str, default: bool | None = None) -> bool:
        return self._one(name, "bool", default)

    def enum(self, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        """An enum given by name, one of `allowed` (a schema-less reader cannot map numbers to names)."""
        return self._one(name, allowed, default)

    def string(self, name: str, default: str | None = None) -> str:
        return self._one(name, "string", default)

    def strings(self, name: str) -> list[str]:
        return self._all(name, "string")


# ----------------------------------------------------------------------------------------------------------------
# Values


def convert(value: Scalar | Message, kind: Any, source: str, path: str) -> Any:
    """One field value as `kind`: "float", "int", "bool", "string", "message" (the block itself), a tuple of allowed
    enum names (-> the name) or an IntEnum class (by name or by number). ConfigError naming source, line and path."""
    line = value.line
    if kind == "message":
        if not isinstance(value, Message):
            raise field_error(source, line, path, f"expected a message block {{...}}, got {value.text!r}")
        return value
    if isinstance(value, Message):
        raise field_error(source, line, path, "expected a value, got a message block")
    text = value.text
    if kind == "float":
        number = _float(value)
        if number is None:
            raise field_error(source, line, path, f"expected a number, got {text!r}")
        return number
    if kind == "int":
        if value.kind == "number":
            try:
                return int(text, 0)
            except ValueError:
                pass
        raise field_error(source, line, path, f"expected an integer, got {text!r}")
    if kind == "bool":
        if text in ("true", "True", "t", "1"):
            return True
        if text in ("false", "False", "f", "0"):
            return False
        raise field_error(source, line, path, f"expected true or false, got {text!r}")
    if kind == "string":
        if value.kind != "string":
            raise field_error(source, line, path, f"expected a quoted string, got {text!r}")
        return "".join(_unquote(m.group(), source, line, path) for m in re.finditer(_STRING, text))
    if isinstance(kind, tuple):
        if value.kind != "ident" or text not in kind:
            raise field_error(source, line, path, f"expected one of {', '.join(kind)}, got {text!r}")
        return text
    return _enum(value, kind, source, path)


def _float(value: Scalar) -> float | None:
    text = value.text
    if value.kind == "ident" and text.lower().lstrip("+-") in ("inf", "infinity", "nan"):
        return float(text.lower().replace("infinity", "inf"))
    if value.kind != "number":
        return None
    if "x" in text.lower():
        return float(int(text, 16))
    return float(text.rstrip("fF"))


def _enum(value: Scalar, kind: type[IntEnum], source: str, path: str) -> IntEnum:
    names = "expected one of " + ", ".join(f"{m.name}={m.value}" for m in kind)
    if value.kind == "ident":
        if value.text in kind.__members__:
            return kind[value.text]
        raise field_error(source, value.line, path, f"unknown {kind.__name__} {value.text!r}", hint=names)
    if value.kind == "number":
        try:
            return kind(int(value.text, 0))
        except ValueError:
            pass
    raise field_error(source, value.line, path, f"expected a {kind.__name__} name or number, got {value.text!r}",
                      hint=names)


_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
                   "'": "'", '"': '"', "?": "?"}


def _unquote(literal: str, source: str, line: int, path: str) -> str:
    """One quoted literal's text, with protobuf's (C) escapes: \\n, \\", \\101 (octal), \\x41, \\u00e9, ..."""
    def one(m: re.Match[str]) -> str:
        octal, hex2, hex4, hex8, simple = m.groups()
        if simple is not None:
            if simple not in _SIMPLE_ESCAPES:
                raise field_error(source, line, path, f"invalid escape '\\{simple}' in {literal!r}",
                                  hint="write a backslash as \\\\")
            return _SIMPLE_ESCAPES[simple]
        if octal is not None:
            return chr(int(octal, 8))
        return chr(int(hex2 or hex4 or hex8, 16))

    return _ESCAPE.sub(one, literal[1:-1])


# ----------------------------------------------------------------------------------------------------------------
# Parsing


def _tokens(text: str, source: str) -> Iterator[_Tok]:
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            snippet = text[pos:pos + 20].split("\n")[0]
            raise field_error(source, line, "", f"unexpected text {snippet!r}",
                              hint="cannot read it as protobuf text format (field: value, block { ... }); "
                                   "truncated or edited by hand?")
        kind = m.lastgroup or ""
        if kind != "ws":
            yield _Tok(kind, m.group(), line)
        line += m.group().count("\n")
        pos = m.end()


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.toks = list(_tokens(text, source))
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, path: str, expected: str = "") -> _Tok:
        tok = self.peek()
        if tok is None:
            last = self.toks[-1].line if self.toks else 1
            message = f"unexpected end of file, expected {expected}" if expected else "unexpected end of file"
            raise field_error(self.source, last, path, message, hint="a '}' is missing or the file is truncated")
        self.i += 1
        return tok

    def fail(self, tok: _Tok, expected: str, path: str) -> ConfigError:
        return field_error(self.source, tok.line, path, f"expected {expected}, got {tok.text!r}")

    def message(self, path: str, line: int, close: str | None) -> Message:
        msg = Message(path=path, line=line, source_name=self.source)
        while True:
            if close is None and self.peek() is None:
                return msg
            tok = self.take(path, repr(close))
            if tok.text == close:
                return msg
            if tok.text in (",", ";"):
                continue
            if tok.text == "[":  # extension or Any type URL: [pkg.ext] { ... }
                parts = []
                while (part := self.take(path, "']'")).text != "]":
                    parts.append(part.text)
                name = "[" + "".join(parts) + "]"
            elif tok.kind == "ident" and not tok.text.startswith(("+", "-")):
                name = tok.text
            else:
                raise self.fail(tok, "a field name", path)
            child_path = f"{path}.{name}" if path else name
            nxt = self.take(child_path, "':' or '{'")
            if nxt.text in ("{", "<"):
                values = [self.message(child_path, tok.line, "}" if nxt.text == "{" else ">")]
            elif nxt.text != ":":  # protobuf requires the colon before a scalar
                raise self.fail(nxt, "':' or '{' after the field name", child_path)
            elif (nxt := self.take(child_path, "a value")).text == "[":
                msg.lists.setdefault(name, nxt.line)
                values = []
                while (item := self.take(child_path, "']'")).text != "]":
                    if item.text != ",":
                        values.append(self.value(item, child_path, tok.line))
            else:
                values = [self.value(nxt, child_path, tok.line)]
            if values:  # `name: []` is the same as leaving a repeated field out
                msg.fields.setdefault(name, []).extend(values)

    def value(self, tok: _Tok, path: str, name_line: int) -> Scalar | Message:
        if tok.text in ("{", "<"):
            return self.message(path, name_line, "}" if tok.text == "{" else ">")
        if tok.kind not in ("string", "number", "ident"):
            raise self.fail(tok, "a value or '{'", path)
        text = tok.text
        # Adjacent string literals concatenate, as in C; convert() decodes them one by one.
        while tok.kind == "string" and (nxt := self.peek()) is not None and nxt.kind == "string":
            text += " " + self.take(path).text
        return Scalar(tok.kind, text, tok.line)


def parse(text: str, source: str = "config") -> Message:
    """Parse protobuf text format into a Message tree; ConfigError with the line for malformed text."""
    return _Parser(text, source).message("", 1, None)


def read_text_file(path: Path, what: str, hint: str = "check the path") -> str:
    """The UTF-8 text of a config file; ConfigError naming the file when it is missing or unreadable."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc})") from None
