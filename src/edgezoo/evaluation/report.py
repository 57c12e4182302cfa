"""The accuracy table and JSON of `edgezoo eval` (and the demo)."""

from __future__ import annotations

from collections.abc import Sequence

from edgezoo.core.report import dump_json, render_table
from edgezoo.evaluation.api import EvalResult
from edgezoo.standins import STANDIN_BANNER

HEADERS = ("what", "semantics", "runtime", "images", "metric", "value %", "delta", "MLPerf target %", "verdict", "images/s")


_SEMANTICS = {"mlperf": "MLPerf", "ti": "TI"}


def _delta(result: EvalResult) -> str:
    return "-" if result.delta is None else f"{result.delta:+.3f}"


def render_results(results: Sequence[EvalResult]) -> str:
    """STAND-IN first when a stand-in model or dataset was involved, then one row per evaluated thing."""
    lines = []
    if any(r.standin_model for r in results):
        lines.append(f"{STANDIN_BANNER}: stand-in models (random weights): the figures say nothing about the "
                     "published models' accuracy")
    if any(r.standin_dataset for r in results):
        lines.append(f"{STANDIN_BANNER}: stand-in dataset (labels/boxes made by edgezoo, not ImageNet/COCO)")
    rows = []
    for r in results:
        images = f"{r.count:,}" + (f" ({r.skipped} skipped)" if r.skipped else "")
        rows.append((r.what, _SEMANTICS.get(r.semantics, r.semantics), r.runtime, images, r.metric, f"{r.value:.3f}", _delta(r), f"{r.target:.3f}",
                     r.verdict(), f"{r.images_per_s:.1f}"))
    lines.append(render_table(HEADERS, rows))
    return "\n".join(lines)


def results_json(results: Sequence[EvalResult]) -> str:
    """A JSON list: one object per evaluated thing (keys as accuracy.json)."""
    return dump_json(list(results))
