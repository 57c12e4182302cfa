"""YAML and JSON from files edgezoo does not control, read with bounds on what a small file can expand to.

A few hundred bytes of YAML aliases ("billion laughs": each level lists the previous one nine times) stand for
billions of values: `yaml.safe_load` builds them cheaply as shared objects, but everything that walks the result
(printing, `report.to_jsonable`, an error message quoting it) then runs for minutes or exhausts memory. A file nested
a few thousand levels deep makes both parsers raise RecursionError. So every user-supplied YAML or JSON document
(config.yaml, runtime_options.yaml, --param values, manifest.json, trust.json, COCO annotations, ...) is read here:

- YAML: at most `MAX_NODES` values once aliases are expanded, counted while the document is composed (before
  anything is built) and at most `MAX_DEPTH` levels of nesting;
- JSON: at most `MAX_DEPTH` levels, measured on the raw text (strings blanked out) before `json.loads` runs.

Errors are one line, "WHERE: what is wrong", raised as the caller's own EdgezooError subclass.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edgezoo.core.errors import ConfigError, EdgezooError

__all__ = ["MAX_DEPTH", "MAX_NODES", "load_json", "load_yaml", "read_json", "read_yaml"]

# Configs and manifests are a handful of levels deep; COCO annotations 4. 64 leaves room for any real document and
# stays far below the interpreter's recursion limit (1000 frames; PyYAML uses 3 per level).
MAX_DEPTH = 64
# Values in a YAML document after alias expansion. A bundle's config.yaml holds about 100, a model card about 300;
# TI's largest configs a few thousand.
MAX_NODES = 100_000
_DETAIL = 200  # characters of a parser's own message quoted in ours

Error = type[EdgezooError]


def _clip(text: str, limit: int = _DETAIL) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


# ------------------------------------------------------------------------------------------------------------ YAML


def _bounded_loader(where: str, error: Error, max_nodes: int, max_depth: int) -> type:
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader whose composer counts nesting and the values each node stands for (aliases included)."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0
            self._weight: dict[int, int] = {}  # id(node) -> values it expands to; nodes stay alive in the tree

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):  # a reference to an earlier node: its weight counts again
                return super().compose_node(parent, index)
            self._depth += 1
            if self._depth > max_depth:
                mark = self.peek_event().start_mark
                raise error(f"{where}:{mark.line + 1}: nested more than {max_depth} levels deep",
                            hint="a configuration is a few levels deep; this file is not one edgezoo wrote")
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            weight = 1 + sum(self._weight.get(id(child), 1) for child in _children(node))
            if weight > max_nodes:
                raise error(f"{where}:{node.start_mark.line + 1}: its aliases (*name) expand to more than "
                            f"{max_nodes:,} values",
                            hint="write the values out, or remove the repeated aliases (a YAML 'billion laughs' "
                                 "document)")
            self._weight[id(node)] = weight
            return node

    return BoundedLoader


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(text: str, where: str, *, error: Error = ConfigError, text_if_invalid: bool = False,
              max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """The YAML document in `text` as Python values (safe tags only), bounded; `error` naming `where` otherwise.

    `text_if_invalid`: text that is not YAML at all is returned as the string it is (a command-line value); the
    bounds still apply."""
    import yaml

    loader = _bounded_loader(where, error, max_nodes, max_depth)(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        if text_if_invalid:
            return text
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{where}{line}: not valid YAML: {_clip(getattr(exc, 'problem', None) or exc)}") from None
    finally:
        loader.dispose()


def read_yaml(path: Path, *, error: Error = ConfigError, what: str = "YAML file") -> Any:
    """`load_yaml` of a UTF-8 file; `error` naming the file when it is missing or unreadable."""
    return load_yaml(_read_text(Path(path), error, what), str(path), error=error)


# ------------------------------------------------------------------------------------------------------------ JSON

# A JSON string (escapes included), blanked out before brackets are counted: a "[" inside one is not nesting.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_CHUNK = 1 << 20


def json_depth_exceeds(data: bytes, max_depth: int) -> bool:
    """True when the JSON text `data` nests arrays/objects deeper than `max_depth` (a cheap pass, no parsing)."""
    import numpy as np

    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    steps = np.frombuffer(brackets.translate(_STEPS), dtype=np.int8)
    depth = 0
    for start in range(0, len(steps), _CHUNK):  # chunked: a 100 MB file of brackets never needs 800 MB of int64
        levels = np.cumsum(steps[start:start + _CHUNK], dtype=np.int64) + depth
        if int(levels.max()) > max_depth:
            return True
        depth = int(levels[-1])
    return False


def load_json(data: str | bytes, where: str, *, error: Error = ConfigError, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON document in `data`, at most `max_depth` levels deep; `error` naming `where` otherwise."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if json_depth_exceeds(raw, max_depth):
        raise error(f"{where}: nested more than {max_depth} levels deep",
                    hint="no file edgezoo reads is that deep; this one is damaged or hostile")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise error(f"{where}: not valid JSON: not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise error(f"{where}: not valid JSON: {_clip(exc)}") from None


def read_json(path: Path, *, error: Error = ConfigError, what: str = "JSON file") -> Any:
    """`load_json` of a file; `error` naming the file when it is missing or unreadable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    return load_json(data, str(path), error=error)


def _read_text(path: Path, error: Error, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (not UTF-8)") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
