"""Recipe parameters, declared: every recipe lists the parameters it takes as `ParamSpec`s (name, type, range or
choices, default, meaning), registered with the recipe.

`validate_params` is the one place values are parsed and checked: the card's params and the user's (`--param`,
`--max-detections`, ...) go through it before anything is fetched, built or converted, and the recipe receives the
typed values (defaults filled in). An unknown name, a value of the wrong type or out of range is a `ParamError`
(exit 2) naming the parameter, what was wrong and the valid range, or the known names with their types.

Upper bounds are what the runtimes can load: LiteRT allocates a detection op's outputs and every input tensor when
the model is loaded, so a huge value is refused here rather than surfacing later as an unloadable model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from edgezoo.core.errors import RecipeError, did_you_mean

# Detection slots (max_detections, top_k, keep_top_k, detections_per_class): outputs are allocated for this many
# boxes when the model loads. 100,000 is far above what an SSD can fill (SSD-MobileNet: 1,917 anchors; ResNet34-SSD:
# 15,130 priors) and TI's recipe uses 4,000; 10^9 made LiteRT allocate 20 GB and fail.
MAX_DETECTION_SLOTS = 100_000
SLOTS_WHY = "outputs are allocated for every slot when the model loads; TI's recipe uses 4000"
# Input tensors: the runtimes allocate them at load time and verification holds 4 images for both models in memory
# (verify/feeds.py, 2 GiB budget), so one input may hold at most 2^26 elements (256 MiB of float32: 8 x 256 MiB =
# 2 GiB); each dimension is an int32 in TFLite and TIDL.
MAX_INPUT_ELEMENTS = 1 << 26
MAX_DIMENSION = (1 << 31) - 1
INPUT_WHY = (f"at most {MAX_INPUT_ELEMENTS:,} elements (256 MiB of float32) per input: the runtime allocates it when "
             "the model loads and verification holds 4 such inputs for both models")


class ParamError(RecipeError):
    """A recipe parameter that is unknown, of the wrong type or out of range."""


class ParamType(Enum):
    """The closed set of parameter types; the value is how messages and `edgezoo info` spell the type."""

    INT = "integer"
    FLOAT = "number"
    BOOL = "true|false"
    CHOICE = "choice"
    TEXT = "text"
    TENSOR_NAMES = "tensor names"
    INPUT_SHAPES = "{input: shape}"
    SIZE = "[height, width]"
    NUMBERS = "list of numbers"
    NUMBER_LISTS = "list of number lists"


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: ParamType
    meaning: str
    default: Any = None  # None: unset; the recipe derives it (default_text says from what)
    default_text: str = ""  # "pipeline.config's score_threshold", "the card's outputs", ...
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # (low, ...] instead of [low, ...]
    high_open: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False  # 'none' is a value of its own (batch: keep the dynamic batch)
    why_high: str = ""  # why the upper bound: said in the error

    # ------------------------------------------------------------------------------------------ descriptions
    def range_text(self) -> str:
        if self.type is ParamType.CHOICE:
            return " | ".join(self.choices)
        if self.low is None and self.high is None:
            return ""
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        low = "-inf" if self.low is None else _num(self.low)
        high = "inf" if self.high is None else _num(self.high)
        return f"{left}{low}, {high}{right}"

    def type_text(self) -> str:
        """'integer in [1, 100000]', 'nms: regular | fast', ... (with 'or none' when nullable)."""
        text = self.type.value if self.type is not ParamType.CHOICE else "one of"
        rng = self.range_text()
        if rng:
            text += f" {rng}" if self.type is ParamType.CHOICE else f" in {rng}"
        return text + (" or none" if self.nullable else "")

    def default_description(self) -> str:
        if self.default is not None:
            return _show(self.default)
        return self.default_text or "-"

    # ------------------------------------------------------------------------------------------ parsing
    def parse(self, value: Any, origin: str) -> Any:
        """The typed, checked value; ParamError starting with `origin` ('--max-detections', 'param batch')."""
        if self.nullable and (value is None or (isinstance(value, str) and value.strip().lower() == "none")):
            return None
        try:
            return _PARSERS[self.type](self, value, origin)
        except (TypeError, ValueError, OverflowError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            raise ParamError(f"{origin}: expected {self.type_text()}, got {_show(value)}{detail}",
                             hint=self.meaning) from None

    def check_number(self, value: float, origin: str) -> None:
        """Range check of one number (also used for each element of a list)."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            why = f" ({self.why_high})" if too_high and self.why_high else ""
            raise ParamError(f"{origin}: {_num(value)} is out of range: expected {self.type_text()}{why}",
                             hint=self.meaning)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    raise ValueError("")


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("")
    try:
        out = float(value)  # int, float or a numeric string (a flag's text)
    except (TypeError, ValueError):
        raise ValueError("") from None
    if not math.isfinite(out):
        raise ValueError("not a finite number")
    return out


def _parse_int(spec: ParamSpec, value: Any, origin: str) -> int:
    out = _int(value)
    spec.check_number(out, origin)
    return out


def _parse_float(spec: ParamSpec, value: Any, origin: str) -> float:
    out = _float(value)
    spec.check_number(out, origin)
    return out


def _parse_bool(spec: ParamSpec, value: Any, origin: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError("")


def _parse_choice(spec: ParamSpec, value: Any, origin: str) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in spec.choices:
        close = did_you_mean(str(value), spec.choices) if isinstance(value, str) else ""
        raise ValueError(close if close.startswith("did") else "")
    return text


def _parse_text(spec: ParamSpec, value: Any, origin: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("")
    return value.strip()


def _parse_names(spec: ParamSpec, value: Any, origin: str) -> list[str]:
    if isinstance(value, str):
        names = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, Sequence) and all(isinstance(v, str) and v.strip() for v in value):
        names = [v.strip() for v in value]
    else:
        raise ValueError("")
    if not names:
        raise ValueError("at least one name")
    return names


def check_shape(dims: Sequence[Any], origin: str) -> list[int]:
    """A static input shape: positive int32 dimensions, at most MAX_INPUT_ELEMENTS elements in all."""
    try:
        shape = [_int(d) for d in dims]
    except ValueError:
        raise ParamError(f"{origin}: dimensions must be integers, got {list(dims)}") from None
    if not shape or any(d < 1 or d > MAX_DIMENSION for d in shape):
        raise ParamError(f"{origin}: every dimension must be in [1, {MAX_DIMENSION}], got {shape}",
                         hint="shapes must be static and positive")
    elements = math.prod(shape)
    if elements > MAX_INPUT_ELEMENTS:
        raise ParamError(f"{origin}: shape {'x'.join(map(str, shape))} has {elements:,} elements; {INPUT_WHY}",
                         hint="give a smaller shape")
    return shape


def check_shapes(shapes: Mapping[str, Sequence[Any]], origin: str) -> dict[str, list[int]]:
    """Every input's shape checked, and all inputs together within MAX_INPUT_ELEMENTS (they are fed together)."""
    out = {str(name): check_shape(dims, f"{origin} {name}") for name, dims in shapes.items()}
    total = sum(math.prod(dims) for dims in out.values())
    if total > MAX_INPUT_ELEMENTS:
        raise ParamError(f"{origin}: the inputs have {total:,} elements together; {INPUT_WHY}",
                         hint="give smaller shapes")
    return out


def _parse_shapes(spec: ParamSpec, value: Any, origin: str) -> dict[str, list[int]]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError("")
    for name, dims in value.items():
        if not isinstance(dims, Sequence) or isinstance(dims, str):
            raise ValueError(f"the shape of {name} is not a list")
    return check_shapes(value, f"{origin}: input")


def _numbers(spec: ParamSpec, value: Any, origin: str) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]  # one number stands for a list of one (input_mean=0)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError("")
    out = [_float(v) for v in value]
    for v in out:
        spec.check_number(v, origin)
    return out


def _parse_size(spec: ParamSpec, value: Any, origin: str) -> list[int]:
    pair = [value, value] if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise ValueError("")
    out = [_int(v) for v in pair]
    for v in out:
        spec.check_number(v, origin)
    return out


def _parse_number_lists(spec: ParamSpec, value: Any, origin: str) -> list[list[float]]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError("")
    return [_numbers(spec, v, origin) for v in value]


_PARSERS: dict[ParamType, Callable[[ParamSpec, Any, str], Any]] = {
    ParamType.INT: _parse_int, ParamType.FLOAT: _parse_float, ParamType.BOOL: _parse_bool,
    ParamType.CHOICE: _parse_choice, ParamType.TEXT: _parse_text, ParamType.TENSOR_NAMES: _parse_names,
    ParamType.INPUT_SHAPES: _parse_shapes, ParamType.SIZE: _parse_size, ParamType.NUMBERS: _numbers,
    ParamType.NUMBER_LISTS: _parse_number_lists,
}


def known_names(specs: Sequence[ParamSpec]) -> str:
    """'batch (integer in [1, 1024] or none), simplify (true|false), ...' for hints."""
    return ", ".join(f"{s.name} ({s.type_text()})" for s in specs) or "none"


def check_names(specs: Sequence[ParamSpec], names: Sequence[str], where: str) -> None:
    """ParamError for the first name no spec declares, with the closest names and every known one with its type."""
    declared = [s.name for s in specs]
    for name in names:
        if name not in declared:
            close = did_you_mean(name, declared)
            raise ParamError(f"{where}: unknown parameter {name!r}",
                             hint=(close + " " if close.startswith("did") else "") + "known: " + known_names(specs))


def validate_params(specs: Sequence[ParamSpec], given: Mapping[str, Any], where: str,
                    origin: Callable[[str], str] = lambda n: f"param {n}") -> dict[str, Any]:
    """Every given value parsed and range-checked, plus the defaults of the others; ParamError otherwise.

    `origin` spells a parameter as the user gave it ('--max-detections' for a flag). Idempotent: validating the typed
    result again gives the same result (the registered recipe re-checks what export passed).
    """
    check_names(specs, list(given), where)
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.name in given:
            try:
                out[spec.name] = spec.parse(given[spec.name], origin(spec.name))
            except ParamError as exc:
                raise exc.with_context(where) from None
        elif spec.default is not None:
            out[spec.name] = spec.default
    return out


def describe(specs: Sequence[ParamSpec]) -> list[dict[str, str]]:
    """Plain rows for `edgezoo info` and --json: name, type, range, default, meaning."""
    return [{"name": s.name, "type": s.type.value, "range": s.range_text() + (" or none" if s.nullable else ""),
             "default": s.default_description(), "meaning": s.meaning} for s in specs]


# Options that limit a detector's output (thresholds and counts): when the user sets one, verification compares
# within it and states its cost; left at their defaults, the converted model must not drop what the original keeps.
OUTPUT_LIMITS = ("score_threshold", "confidence_threshold", "max_detections", "detections_per_class", "top_k",
                 "keep_top_k")


def chosen_limits(params: Mapping[str, Any], specs: Sequence[ParamSpec] = ()) -> dict[str, Any]:
    """The output limits among `params` the user chose: set, and not the recipe's default (a default equal to the
    original's own limit is not a choice). Keys are spelled as the CLI flag (--keep-top-k)."""
    defaults = {s.name: s.default for s in specs}
    return {"--" + name.replace("_", "-"): params[name] for name in OUTPUT_LIMITS
            if params.get(name) is not None and params[name] != defaults.get(name)}
