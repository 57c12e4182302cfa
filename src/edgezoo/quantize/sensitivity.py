"""Which layers 8 bits hurt, and the 16-bit layer set that buys the accuracy back (on the TIDL preview).

Per quantizable layer: the SQNR of its output in the fully quantized preview against the float model on the
calibration frames (the error accumulated up to that layer, as TIDL's per-layer traces show it), and the end
metric when only that layer stays float. The 16-bit proposal adds TIDL-eligible layers (Conv, BN, non-max Pool,
Eltwise) in ranked order, re-measuring the whole preview each time, until the drop is at most the target; it is
then pruned of layers whose removal keeps the drop within the target. Greedy: small, not proven minimal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.quantize.onnx_layers import Layer, Probe


@dataclass
class LayerSensitivity:
    name: str
    ops: str
    sqnr_db: float
    metric_if_float: float | None = None  # the end metric with only this layer float
    gain: float | None = None  # metric_if_float - fully quantized metric, percentage points
    can_be_16bit: bool = False


@dataclass
class SixteenBitProposal:
    target_drop: float
    names: list[str] = field(default_factory=list)
    metric: float | None = None
    drop: float | None = None
    reached: bool = False
    tried: list[tuple[int, float]] = field(default_factory=list)  # (set size, drop) as measured along the way


def sqnr_per_layer(float_model: Any, quant_model: Any, layers: Sequence[Layer],
                   inputs: Sequence[np.ndarray]) -> dict[str, float]:
    """10 log10(sum f^2 / sum (f - q)^2) of each layer's output over the frames (inf when identical)."""
    names = [layer.name for layer in layers]
    reference, quantized = Probe(float_model, names), Probe(quant_model, names)
    signal = dict.fromkeys(names, 0.0)
    noise = dict.fromkeys(names, 0.0)
    for batch in inputs:
        f, q = reference.run(batch), quantized.run(batch)
        for name in names:
            a = f[name].astype(np.float64)
            signal[name] += float(np.sum(a * a))
            noise[name] += float(np.sum((a - q[name]) ** 2))
    return {n: (10.0 * math.log10(signal[n] / noise[n]) if noise[n] > 0 and signal[n] > 0 else math.inf)
            for n in names}


def rank_layers(layers: Sequence[Layer], sqnr: dict[str, float],
                metric_if_float: Callable[[Layer], float] | None, quantized_metric: float | None
                ) -> list[LayerSensitivity]:
    """Most harmful first: largest metric gain when kept float, then lowest SQNR."""
    rows = []
    for layer in layers:
        row = LayerSensitivity(layer.name, "+".join(layer.ops), round(sqnr[layer.name], 2),
                               can_be_16bit=layer.can_be_16bit)
        if metric_if_float is not None and quantized_metric is not None:
            row.metric_if_float = round(metric_if_float(layer), 3)
            row.gain = round(row.metric_if_float - quantized_metric, 3)
        rows.append(row)
    rows.sort(key=lambda r: (-(r.gain or 0.0), r.sqnr_db))
    return rows


def propose_16bit(ranked: Sequence[LayerSensitivity], target_drop: float,
                  drop_with: Callable[[list[str]], tuple[float, float]]) -> SixteenBitProposal:
    """The 16-bit set; `drop_with(names) -> (metric, drop)` measures the preview with those layers in 16 bits."""
    proposal = SixteenBitProposal(target_drop)
    candidates = [r.name for r in ranked if r.can_be_16bit]
    chosen: list[str] = []
    metric, drop = drop_with(chosen)
    proposal.tried.append((0, drop))
    for name in candidates:
        if drop <= target_drop:
            break
        chosen.append(name)
        metric, drop = drop_with(chosen)
        proposal.tried.append((len(chosen), drop))
    if drop <= target_drop:
        for name in list(chosen):  # prune what the later additions made unnecessary
            trial = [n for n in chosen if n != name]
            trial_metric, trial_drop = drop_with(trial)
            if trial_drop <= target_drop:
                chosen, metric, drop = trial, trial_metric, trial_drop
    proposal.names, proposal.metric, proposal.drop = chosen, round(metric, 3), round(drop, 3)
    proposal.reached = drop <= target_drop
    return proposal


def save_model(model: Any, path: Path) -> Path:
    import onnx

    onnx.save(model, str(path))
    return path
