"""The summary table printed after exports (by `edgezoo export` and `edgezoo demo`)."""

from __future__ import annotations

from dataclasses import dataclass

from edgezoo.export import ExportResult
from edgezoo.report import fmt_number, render_table
from edgezoo.verify.report import ParityReport

HEADERS = ("model", "target", "file", "size", "cut", "parity", "result")


@dataclass(frozen=True)
class SkippedRow:
    """A (model, target) that was not exported, with why (no recipe yet, no recipe for this target, error)."""

    model_id: str
    target: str
    reason: str
    failed: bool = False  # an error (counts as a failure) vs a planned skip


def fmt_size(size: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def parity_figures(report: ParityReport) -> str:
    """The headline figures: worst max-abs error, worst cosine, top-1 agreement / top-5 overlap when present."""
    parts = []
    abs_errors = [c.value for c in report.checks if c.name.endswith("max_abs_error")]
    if abs_errors:
        parts.append(f"max|err| {fmt_number(max(abs_errors))}")
    cosines = [c.value for c in report.checks if c.name.endswith("cosine")]
    if cosines:
        parts.append(f"cos {min(cosines):.6f}")
    for c in report.checks:
        if c.name == "top1_agreement":
            parts.append(f"top1 {c.value:.0%}")
        elif c.name == "top5_overlap":
            parts.append(f"top5 {c.value:.0%}")
    other = [c for c in report.checks if not c.name.endswith(("max_abs_error", "cosine"))
             and c.name not in ("top1_agreement", "top5_overlap")]
    parts += [f"{c.name} {fmt_number(c.value)}" for c in other[:3]]
    return ", ".join(parts) or "-"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def fmt_cut(cut: list[str], reason: str) -> str:
    """'a (card)', 'a, b (why)', or 'a (+3 more) (why)' so one row stays readable."""
    if not cut:
        text = "-"
    elif len(cut) <= 2:
        text = ", ".join(cut)
    else:
        text = f"{cut[0]} (+{len(cut) - 1} more)"
    return text + (f" ({_short(reason, 40)})" if reason else "")


def row(result: ExportResult) -> list[str]:
    model = result.model_file
    cut = fmt_cut(result.cut, result.cut_reason)
    return [result.model_id, result.target.value, f"{result.bundle}/{model.name}", fmt_size(model.size), cut,
            parity_figures(result.report), "PASS" if result.passed else "FAIL"]


def render(results: list[ExportResult], skipped: list[SkippedRow] = (), *, standin: bool = False) -> str:
    from edgezoo.standins import STANDIN_BANNER

    rows = [row(r) for r in results]
    rows += [[s.model_id, s.target, "-", "-", "-", _short(s.reason, 100), "FAIL" if s.failed else "skipped"]
             for s in skipped]
    failed = sum(not r.passed for r in results) + sum(s.failed for s in skipped)
    head = (f"{STANDIN_BANNER}: exported from stand-in files with random weights, not the published models\n"
            if standin else "")
    tail = f"\n{len(results)} exported, {failed} failed" + (f", {sum(not s.failed for s in skipped)} skipped"
                                                           if any(not s.failed for s in skipped) else "")
    return head + render_table(HEADERS, rows) + tail
