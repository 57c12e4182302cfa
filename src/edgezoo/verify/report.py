"""Parity reports: error statistics and the checks against tolerances, never a bare pass/fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgezoo.core.report import fmt_number, render_table, to_jsonable
from edgezoo.standins import STANDIN_BANNER


@dataclass(frozen=True)
class Check:
    """One figure compared with its tolerance: passes when `value <= limit` (kind "max") or `>= limit` ("min")."""

    name: str
    value: float
    limit: float
    kind: str  # "max" | "min"

    @property
    def passed(self) -> bool:
        if self.value != self.value:  # NaN never passes
            return False
        return self.value <= self.limit if self.kind == "max" else self.value >= self.limit


@dataclass
class ParityReport:
    original: str
    converted: str
    task: str  # "classification" | "detection" | "tensors"
    standin: bool = False
    checks: list[Check] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # per-output statistics and task figures
    notes: list[str] = field(default_factory=list)  # expected differences, explained
    inputs: list[str] = field(default_factory=list)  # names of the images/inputs used

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def add(self, name: str, value: float, limit: float, kind: str = "max") -> Check:
        check = Check(name, float(value), float(limit), kind)
        self.checks.append(check)
        return check

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({
            "standin": self.standin,
            "passed": self.passed,
            "original": self.original,
            "converted": self.converted,
            "task": self.task,
            "checks": [{"name": c.name, "value": c.value, "limit": c.limit, "kind": c.kind, "passed": c.passed}
                       for c in self.checks],
            "metrics": self.metrics,
            "notes": self.notes,
            "inputs": self.inputs,
        })

    def headline(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        prefix = f"{STANDIN_BANNER}: " if self.standin else ""
        return f"{prefix}{status} parity {self.task}: {self.converted} vs {self.original}"

    def render(self) -> str:
        lines = [self.headline()]
        rows = [[c.name, c.value, ("<= " if c.kind == "max" else ">= ") + fmt_number(c.limit),
                 "ok" if c.passed else "FAIL"] for c in self.checks]
        lines.append(render_table(["check", "value", "tolerance", ""], rows))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def failure_summary(self) -> str:
        return "; ".join(f"{c.name} = {fmt_number(c.value)} (tolerance {'<=' if c.kind == 'max' else '>='} "
                         f"{fmt_number(c.limit)})" for c in self.failures())
