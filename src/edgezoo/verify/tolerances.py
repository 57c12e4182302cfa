"""Parity tolerances per verification task: the one place that says which tolerance names exist and their defaults.

Classification and raw-tensor parity share one set of names (the engine computes tensor statistics for both, top-k
figures for classification); detection parity (`--task detection`, a detection card, `--prototxt`) has its own.
Pure Python on purpose: `edgezoo verify --help` reads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgezoo.core.errors import EdgezooError, did_you_mean

# Classification / tensors: checked always ...
DEFAULT_TOLERANCES: dict[str, float] = {
    "max_abs_error": 1e-3,
    "min_cosine": 0.9999,
    "min_top1_agreement": 1.0,
    "min_top5_overlap": 0.99,
}
# ... and figures checked only when a tolerance for them is given.
OPTIONAL_TOLERANCES: tuple[str, ...] = ("max_rel_error", "max_mean_abs_error", "min_sqnr_db")
KNOWN_TOLERANCES: tuple[str, ...] = tuple(DEFAULT_TOLERANCES) + OPTIONAL_TOLERANCES

DETECTION_TOLERANCES: dict[str, float] = {
    "match_iou": 0.9,  # IoU for two detections of the same class to count as the same
    "min_matched_fraction": 0.95,  # both ways: original's detections found, converted's explained
    "max_box_error": 0.01,  # worst coordinate difference of a matched pair (normalised)
    "max_score_error": 0.01,
}

DETECTION = "detection"


@dataclass(frozen=True)
class Range:
    """The values a tolerance can meaningfully take (a limit outside it makes every model pass or every one fail)."""

    low: float
    high: float = math.inf
    low_open: bool = False

    def contains(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return math.isfinite(value) and above and value <= self.high

    def __str__(self) -> str:
        left = "(" if self.low_open else "["
        if math.isinf(self.low):
            return "a finite number"
        if math.isinf(self.high):
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        return f"a number in {left}{self.low:g}, {self.high:g}]"


_ERROR = Range(0.0)  # absolute/relative/box/score errors: >= 0
_FRACTION = Range(0.0, 1.0)  # agreements, overlaps, matched fractions
RANGES: dict[str, Range] = {
    "max_abs_error": _ERROR, "max_rel_error": _ERROR, "max_mean_abs_error": _ERROR,
    "min_cosine": Range(-1.0, 1.0),
    "min_top1_agreement": _FRACTION, "min_top5_overlap": _FRACTION,
    "min_sqnr_db": Range(-math.inf),  # any finite dB figure
    "match_iou": Range(0.0, 1.0, low_open=True),  # IoU 0 would pair any two boxes
    "min_matched_fraction": _FRACTION, "max_box_error": _ERROR, "max_score_error": _ERROR,
}


def check_values(values: Mapping[str, float], where: str = "") -> None:
    """EdgezooError (exit 2) for the first tolerance outside its range (NaN, inf, a negative error, a cosine of 2)."""
    for name, value in values.items():
        valid = RANGES.get(name)
        if valid is not None and not valid.contains(float(value)):
            raise EdgezooError(f"{where + ': ' if where else ''}tolerance {name}={value:g} is out of range: "
                               f"{name} must be {valid}", hint="fix the --tolerance value")


def parse_assignments(items: Iterable[str]) -> dict[str, float]:
    """`--tolerance NAME=VALUE` items -> {name: number}, each value in its name's range (EdgezooError, exit 2);
    whether a name fits the task is check_names' job, once the task is known."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise EdgezooError(f"--tolerance {item!r}: expected NAME=VALUE", hint="e.g. --tolerance max_abs_error=1e-3")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise EdgezooError(f"--tolerance {item!r}: {value.strip()!r} is not a number") from None
    check_values(out)
    return out


def defaults(task: str | None) -> dict[str, float]:
    """The default tolerances of a task (None: the engine's, whose guess is classification or tensors)."""
    return dict(DETECTION_TOLERANCES if task == DETECTION else DEFAULT_TOLERANCES)


def known(task: str | None) -> tuple[str, ...]:
    """Every tolerance name valid for a task ("classification", "tensors", "detection" or None)."""
    return tuple(DETECTION_TOLERANCES) if task == DETECTION else KNOWN_TOLERANCES


def check_names(names: Iterable[str], task: str | None, where: str = "") -> None:
    """EdgezooError (exit 2) for the first name not valid for `task`, with the closest valid ones."""
    valid = known(task)
    for name in names:
        if name in valid:
            continue
        parity = "detection" if task == DETECTION else "classification/tensor"
        if name in known(None if task == DETECTION else DETECTION):
            hint = (f"{name} is a {'classification/tensor' if task == DETECTION else 'detection'} tolerance; "
                    f"{parity} tolerances: " + ", ".join(valid))
        else:
            hint = did_you_mean(name, valid) + f" {parity} tolerances: " + ", ".join(valid)
        raise EdgezooError(f"{where + ': ' if where else ''}unknown tolerance {name!r} for {parity} parity",
                           hint=hint)
