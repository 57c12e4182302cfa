"""The accuracy part of `edgezoo demo`: per model, a stand-in dataset labelled by the original, then the original and
its exported bundles evaluated on it side by side (a few dozen images each, so the demo stays within minutes).

Detectors are shown under both semantics: MLPerf's (the original's reference app: no box clipping, float resize) and
TI's (what TI's benchmark computes from the bundle's config.yaml, the original fed the same way). An SSD artifact's
MLPerf figure moves away from its original's where the runtime's post-processing differs from the graph's (the OD
API graph clips boxes to the image; TFLite_Detection_PostProcess and TIDL do not, TI's pipeline does afterwards);
under TI's semantics both sides get the same arithmetic, so the delta is the conversion's own."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgezoo import zoo
from edgezoo.core.progress import step
from edgezoo.datasets import build_standin, open_dataset
from edgezoo.evaluation.api import EvalResult, evaluate
from edgezoo.evaluation.standin_labels import model_labeller
from edgezoo.evaluation.subjects import bundle_subjects, original_subjects
from edgezoo.evaluation.ti_subjects import ti_bundle_subjects, ti_original_subject
from edgezoo.standins import StandinVariant
from edgezoo.zoo.schema import Task

# Images per model: enough for informative figures. A model with a large input (ResNet34-SSD's 1200x1200) gets fewer,
# and its full-size stand-in is too slow for a demo of minutes (measured on 2 cores: ~9 s per image and subject).
DEMO_COUNT = 16
LARGE_INPUT_PIXELS = 1_000_000
LARGE_INPUT_COUNT = 6


def _large_input(card: Any) -> str:
    """Why the model is slow in the demo ("1200x1200 input"), or "" when it is not."""
    height, width = card.mlperf.size if card.mlperf else (0, 0)
    return f"{height}x{width} input, ~9 s per image and subject on 2 cores" \
        if height * width > LARGE_INPUT_PIXELS else ""


def demo_evaluations(exports: Sequence[Any], out: Path, variant: Any) -> list[EvalResult]:
    """`exports`: the demo's ExportResults; only bundles that passed parity are evaluated."""
    bundles: dict[str, list[Path]] = {}
    for export in exports:
        if export.passed:
            bundles.setdefault(export.model_id, []).append(Path(export.bundle))
    results: list[EvalResult] = []
    for model_id, folders in bundles.items():
        card = zoo.get_card(model_id)
        slow = _large_input(card)
        if slow and StandinVariant(variant) is StandinVariant.FULL:
            step(f"{model_id}: not evaluated in the demo ({slow}); run 'edgezoo eval {model_id} "
                 f"{' '.join(map(str, folders))} --standin --dataset DIR' or 'edgezoo demo --standin-variant reduced'")
            continue
        originals = original_subjects(card, standin=True, variant=variant, offline=True)
        kind = card.labels.dataset
        count = LARGE_INPUT_COUNT if slow else DEMO_COUNT
        step(f"{model_id}: stand-in {kind} dataset of {count} images labelled by the original")
        root = build_standin(kind, out / "datasets" / f"{kind}-{model_id}", count=count,
                             labeller=model_labeller(originals[0]))
        subjects = originals + [s for folder in folders for s in bundle_subjects(folder)]
        if card.task is Task.DETECTION:  # both semantics, MLPerf's and TI's, each bundle's rows together
            subjects = [*originals, *map(ti_original_subject, originals)]
            for folder in folders:
                subjects += [*bundle_subjects(folder), *ti_bundle_subjects(folder)]
        results += evaluate(subjects, open_dataset(root), out / "evals")
    return results
