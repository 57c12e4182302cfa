"""The table and JSON of `edgezoo quantize`."""

from __future__ import annotations

from edgezoo.core.report import dump_json, render_table
from edgezoo.quantize.api import QuantizeResult
from edgezoo.standins import STANDIN_BANNER

SENSITIVITY_ROWS = 10  # the table shows the worst layers; quantize.json holds them all


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def render_result(result: QuantizeResult) -> str:
    lines = []
    if result.standin:
        lines.append(f"{STANDIN_BANNER}: stand-in weights: the drops say nothing about the published models' drops")
    lines.append(f"{result.model}: {result.scheme} (TIDL quantization_scale_type {result.scale_type}), "
                 f"{result.frames} calibration frames, {result.calibration_seconds:.1f} s -> {result.bundle}")
    if result.scores:
        rows = [(s.what, s.runtime, s.count, s.metric, f"{s.value:.3f}", _signed(s.delta),
                 "-" if s.agreement is None else f"{s.agreement:.1f}") for s in result.scores]
        lines.append(render_table(("what", "runtime", "images", "metric", "value %", "delta",
                                   "agreement with float %"), rows))
    if result.sensitivity:
        lines.append(f"per-layer sensitivity (worst {min(SENSITIVITY_ROWS, len(result.sensitivity))} of "
                     f"{len(result.sensitivity)}; all in quantize.json):")
        rows = [(r.name, r.ops, f"{r.sqnr_db:.1f}", "-" if r.metric_if_float is None else f"{r.metric_if_float:.3f}",
                 _signed(r.gain), "yes" if r.can_be_16bit else "no") for r in result.sensitivity[:SENSITIVITY_ROWS]]
        lines.append(render_table(("layer (TIDL name)", "ops", "SQNR dB", "metric if float", "gain", "16-bit ok"),
                                  rows))
    proposal = result.sixteen_bit
    if proposal is not None:
        verdict = "reached" if proposal.reached else "NOT reached even with every eligible layer in 16 bits"
        lines.append(f"16-bit proposal for drop <= {proposal.target_drop}: {len(proposal.names)} layer(s), measured "
                     f"drop {proposal.drop} ({verdict}): {', '.join(proposal.names) or '(none needed)'}")
        if proposal.reached:
            lines.append("written to runtime_options.yaml (output_feature_16bit_names_list, params_16bit_names_list)")
    if result.scheme == "tidl-preview":
        lines.append("a preview of TIDL's import, not TIDL: " + "; ".join(result.notes))
    if not result.passed:
        lines.append(f"FAIL: drop {result.drop} > --max-drop {result.max_drop}: the bundle went to {result.bundle}")
    return "\n".join(lines)


def result_json(result: QuantizeResult) -> str:
    return dump_json(result)
