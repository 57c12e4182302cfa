"""A small reader for protobuf text format (pipeline.config, meta-architecture prototxts) without their .proto files.

Text format only needs field names, so the TF Object Detection API's and TIDL's schemas are not required: the text
is parsed into a generic tree (`Message`: field name -> list of values, in order), and callers read the few fields
they use with typed accessors that raise ConfigError naming the field path ("model.ssd.num_classes: ...").
Unknown fields are kept and ignored, as a reader of the real schema would do for fields it does not ask for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from edgezoo.errors import ConfigError

_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?)
  | (?P<ident>[-+]?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}<>:\[\],;/])
""", re.VERBOSE)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    line: int


@dataclass(frozen=True)
class Scalar:
    """A scalar field value as written: kind is 'string', 'number' or 'ident' (enum names, true/false, inf)."""

    kind: str
    text: str
    line: int


@dataclass
class Message:
    """One message block: its fields in order of appearance (repeated fields collect every occurrence)."""

    path: str = ""
    line: int = 0
    fields: dict[str, list[Any]] = field(default_factory=dict)
    source_name: str = "config"  # the file, for error messages

    # -- access with path-precise errors ------------------------------------------------------------------------

    def _where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self.fields

    def message(self, name: str, required: bool = True) -> "Message | None":
        values = self.fields.get(name)
        if not values:
            if required:
                raise ConfigError(f"{self.source_name}: {self._where(name)}: missing",
                                  hint=f"fields present in {self.path or 'the file'}: "
                                       + (", ".join(self.fields) or "none"))
            return None
        value = values[-1]
        if not isinstance(value, Message):
            raise ConfigError(f"{self.source_name}: {self._where(name)}: expected a message block {{...}}, "
                              f"got {value.text!r} (line {value.line})")
        return value

    def messages(self, name: str) -> list["Message"]:
        out = []
        for value in self.fields.get(name, []):
            if not isinstance(value, Message):
                raise ConfigError(f"{self.source_name}: {self._where(name)}: expected a message block, "
                                  f"got {value.text!r} (line {value.line})")
            out.append(value)
        return out

    def which(self, names: tuple[str, ...]) -> str | None:
        """The name of the one-of member that is set (the last one written wins, as protobuf does)."""
        present = [n for n in self.fields if n in names]
        return present[-1] if present else None

    def _scalars(self, name: str) -> list[Scalar]:
        out = []
        for value in self.fields.get(name, []):
            if isinstance(value, Message):
                raise ConfigError(f"{self.source_name}: {self._where(name)}: expected a value, got a message block "
                                  f"(line {value.line})")
            out.append(value)
        return out

    def float(self, name: str, default: float | None = None) -> float:
        values = self._scalars(name)
        if not values:
            return self._default(name, default)
        return _to_float(values[-1], f"{self.source_name}: {self._where(name)}")

    def floats(self, name: str) -> list[float]:
        return [_to_float(v, f"{self.source_name}: {self._where(name)}") for v in self._scalars(name)]

    def int(self, name: str, default: int | None = None) -> int:
        values = self._scalars(name)
        if not values:
            return self._default(name, default)
        return _to_int(values[-1], f"{self.source_name}: {self._where(name)}")

    def ints(self, name: str) -> list[int]:
        return [_to_int(v, f"{self.source_name}: {self._where(name)}") for v in self._scalars(name)]

    def bool(self, name: str, default: bool | None = None) -> bool:
        values = self._scalars(name)
        if not values:
            return self._default(name, default)
        v = values[-1]
        if v.text in ("true", "True", "t", "1"):
            return True
        if v.text in ("false", "False", "f", "0"):
            return False
        raise ConfigError(f"{self.source_name}: {self._where(name)}: expected true or false, got {v.text!r} "
                          f"(line {v.line})")

    def enum(self, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        values = self._scalars(name)
        if not values:
            return self._default(name, default)
        v = values[-1]
        if v.kind != "ident" or v.text not in allowed:
            raise ConfigError(f"{self.source_name}: {self._where(name)}: expected one of {', '.join(allowed)}, "
                              f"got {v.text!r} (line {v.line})")
        return v.text

    def string(self, name: str, default: str | None = None) -> str:
        values = self._scalars(name)
        if not values:
            return self._default(name, default)
        v = values[-1]
        if v.kind != "string":
            raise ConfigError(f"{self.source_name}: {self._where(name)}: expected a quoted string, got {v.text!r} "
                              f"(line {v.line})")
        return _unquote(v.text)

    def strings(self, name: str) -> list[str]:
        out = []
        for v in self._scalars(name):
            if v.kind != "string":
                raise ConfigError(f"{self.source_name}: {self._where(name)}: expected a quoted string, "
                                  f"got {v.text!r} (line {v.line})")
            out.append(_unquote(v.text))
        return out

    def _default(self, name: str, default: Any) -> Any:
        if default is None:
            raise ConfigError(f"{self.source_name}: {self._where(name)}: missing",
                              hint=f"fields present in {self.path or 'the file'}: " + (", ".join(self.fields) or "none"))
        return default


def _to_float(v: Scalar, where: str) -> float:
    text = v.text.rstrip("fF") if v.kind == "number" and not v.text.lower().startswith(("0x", "-0x", "+0x")) else v.text
    if v.kind == "ident" and text.lower().lstrip("+-") in ("inf", "infinity", "nan"):
        return float(text.lower().replace("infinity", "inf"))
    if v.kind != "number":
        raise ConfigError(f"{where}: expected a number, got {v.text!r} (line {v.line})")
    try:
        return float(int(text, 16)) if "x" in text.lower() else float(text)
    except ValueError:
        raise ConfigError(f"{where}: expected a number, got {v.text!r} (line {v.line})") from None


def _to_int(v: Scalar, where: str) -> int:
    if v.kind != "number":
        raise ConfigError(f"{where}: expected an integer, got {v.text!r} (line {v.line})")
    try:
        return int(v.text, 0)
    except ValueError:
        raise ConfigError(f"{where}: expected an integer, got {v.text!r} (line {v.line})") from None


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _tokens(text: str, source: str) -> Iterator[_Tok]:
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            snippet = text[pos:pos + 20].split("\n")[0]
            raise ConfigError(f"{source}: line {line}: cannot read {snippet!r}",
                              hint="the file is not protobuf text format (truncated or edited by hand?)")
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

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            last = self.toks[-1].line if self.toks else 1
            raise ConfigError(f"{self.source}: line {last}: unexpected end of file",
                              hint="a '}' is missing or the file is truncated")
        self.i += 1
        return tok

    def fail(self, tok: _Tok, expected: str, path: str) -> ConfigError:
        where = f" in {path}" if path else ""
        return ConfigError(f"{self.source}: line {tok.line}: expected {expected}{where}, got {tok.text!r}")

    def message(self, path: str, line: int, close: str | None) -> Message:
        msg = Message(path=path, line=line, source_name=self.source)
        while True:
            tok = self.peek()
            if tok is None:
                if close is None:
                    return msg
                self.take()  # raises "unexpected end of file"
            if close is not None and tok.text == close:
                self.take()
                return msg
            if tok.text in (",", ";"):
                self.take()
                continue
            name_tok = self.take()
            if name_tok.text == "[":  # extension or Any type URL: [pkg.ext] { ... }
                parts = []
                while self.peek() is not None and self.peek().text != "]":
                    parts.append(self.take().text)
                self.take()
                name = "[" + "".join(parts) + "]"
            elif name_tok.kind == "ident" and not name_tok.text.startswith(("+", "-")):
                name = name_tok.text
            else:
                raise self.fail(name_tok, "a field name", path)
            child_path = f"{path}.{name}" if path else name
            nxt = self.take()
            if nxt.text == ":":
                nxt = self.take()
                if nxt.text == "[":
                    values = self.list_values(child_path, nxt)
                    msg.fields.setdefault(name, []).extend(values)
                    continue
            if nxt.text in ("{", "<"):
                sub = self.message(child_path, nxt.line, "}" if nxt.text == "{" else ">")
                msg.fields.setdefault(name, []).append(sub)
            elif nxt.kind in ("string", "number", "ident"):
                value = Scalar(nxt.kind, nxt.text, nxt.line)
                # Adjacent string literals concatenate, as in C.
                while nxt.kind == "string" and self.peek() is not None and self.peek().kind == "string":
                    extra = self.take()
                    value = Scalar("string", '"' + _unquote(value.text) + _unquote(extra.text) + '"', value.line)
                msg.fields.setdefault(name, []).append(value)
            else:
                raise self.fail(nxt, "a value or '{'", child_path)

    def list_values(self, path: str, open_tok: _Tok) -> list[Any]:
        values: list[Any] = []
        while True:
            tok = self.take()
            if tok.text == "]":
                return values
            if tok.text == ",":
                continue
            if tok.text in ("{", "<"):
                values.append(self.message(path, tok.line, "}" if tok.text == "{" else ">"))
            elif tok.kind in ("string", "number", "ident"):
                values.append(Scalar(tok.kind, tok.text, tok.line))
            else:
                raise self.fail(tok, "a list value", path)


def parse(text: str, source: str = "config") -> Message:
    """Parse protobuf text format into a Message tree; ConfigError with the line for malformed text."""
    parser = _Parser(text, source)
    root = parser.message("", 1, None)
    return root
