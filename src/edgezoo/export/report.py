"""The summary table printed after exports (by `edgezoo export` and `edgezoo demo`)."""

from __future__ import annotations

from dataclasses import dataclass

from edgezoo.core.report import fmt_number, render_table
from edgezoo.export.api import ExportResult
from edgezoo.standins import STANDIN_BANNER
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


def _detection_figures(checks: dict[str, float]) -> str:
    """'153 dets, matched 99.4%/100%, box 6.7e-05, score 1.4e-04' from a detection parity report."""
    found = [v for k, v in checks.items() if k.startswith("matched_fraction_of_") and k != "matched_fraction_of_original"]
    parts = []
    if "original_detections" in checks:
        parts.append(f"{int(checks['original_detections'])} dets")
    if "matched_fraction_of_original" in checks:
        back = f"/{found[0]:.1%}" if found else ""
        parts.append(f"matched {checks['matched_fraction_of_original']:.1%}{back}")
    if "max_box_error" in checks:
        parts.append(f"box {fmt_number(checks['max_box_error'])}")
    if "max_score_error" in checks:
        parts.append(f"score {fmt_number(checks['max_score_error'])}")
    return ", ".join(parts)


def parity_figures(report: ParityReport) -> str:
    """The headline figures: worst max-abs error, worst cosine, top-1/top-5 for classification; matched fractions
    and worst box/score errors for detection."""
    checks = {c.name: c.value for c in report.checks}
    if any(name.startswith("matched_fraction_of_") for name in checks):
        return _detection_figures(checks) or "-"
    parts = []
    abs_errors = [v for k, v in checks.items() if k.endswith("max_abs_error")]
    if abs_errors:
        parts.append(f"max|err| {fmt_number(max(abs_errors))}")
    cosines = [v for k, v in checks.items() if k.endswith("cosine")]
    if cosines:
        parts.append(f"cos {min(cosines):.6f}")
    if "top1_agreement" in checks:
        parts.append(f"top1 {checks['top1_agreement']:.0%}")
    if "top5_overlap" in checks:
        parts.append(f"top5 {checks['top5_overlap']:.0%}")
    other = [k for k in checks if not k.endswith(("max_abs_error", "cosine")) and k not in ("top1_agreement",
                                                                                              "top5_overlap")]
    parts += [f"{k} {fmt_number(checks[k])}" for k in other[:3]]
    return ", ".join(parts) or "-"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def fmt_cut(cut: list[str], reason: str) -> str:
    """'a (card)', 'a, b (why)', or 'a +13 more (why)' so one row stays readable; the manifest has them all."""
    if not cut:
        text = "-"
    elif len(cut) == 1:
        text = _short(cut[0], 40)
    else:
        text = f"{_short(cut[0], 32)} +{len(cut) - 1} more"
    return text + (f" ({_short(reason, 24)})" if reason else "")


def row(result: ExportResult) -> list[str]:
    model = result.model_file
    cut = fmt_cut(result.cut, result.cut_reason)
    return [result.model_id, result.target.value, f"{result.bundle}/{model.name}", fmt_size(model.size), cut,
            parity_figures(result.report), "PASS" if result.passed else "FAIL"]


def render(results: list[ExportResult], skipped: list[SkippedRow] = (), *, standin: bool = False) -> str:
    rows = [row(r) for r in results]
    rows += [[s.model_id, s.target, "-", "-", "-", _short(s.reason, 100), "FAIL" if s.failed else "skipped"]
             for s in skipped]
    failed = sum(not r.passed for r in results) + sum(s.failed for s in skipped)
    head = (f"{STANDIN_BANNER}: exported from stand-in files with random weights, not the published models\n"
            if standin else "")
    tail = f"\n{len(results)} exported, {failed} failed" + (f", {sum(not s.failed for s in skipped)} skipped"
                                                           if any(not s.failed for s in skipped) else "")
    return head + render_table(HEADERS, rows) + tail
