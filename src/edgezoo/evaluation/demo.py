"""The accuracy part of `edgezoo demo`: per model, a stand-in dataset labelled by the original, then the original and
its exported bundles evaluated on it side by side (a few dozen images each, so the demo stays within minutes)."""

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
from edgezoo.standins import StandinVariant

# Images per model: enough for informative figures; ResNet34-SSD runs at 1200x1200, so it gets fewer.
DEMO_COUNT = {"ssd-resnet34-1200": 6}
DEFAULT_DEMO_COUNT = 16
# Full-size stand-ins too slow for a demo of minutes (measured on 2 cores: ~9 s per image and subject).
SKIP_FULL = {"ssd-resnet34-1200": "1200x1200 input, ~9 s per image and subject on 2 cores"}


def demo_evaluations(exports: Sequence[Any], out: Path, variant: Any) -> list[EvalResult]:
    """`exports`: the demo's ExportResults; only bundles that passed parity are evaluated."""
    bundles: dict[str, list[Path]] = {}
    for export in exports:
        if export.passed:
            bundles.setdefault(export.model_id, []).append(Path(export.bundle))
    results: list[EvalResult] = []
    for model_id, folders in bundles.items():
        if model_id in SKIP_FULL and StandinVariant(variant) is StandinVariant.FULL:
            step(f"{model_id}: not evaluated in the demo ({SKIP_FULL[model_id]}); run 'edgezoo eval {model_id} "
                 f"{' '.join(map(str, folders))} --standin --dataset DIR' or 'edgezoo demo --standin-variant reduced'")
            continue
        card = zoo.get_card(model_id)
        originals = original_subjects(card, standin=True, variant=variant, offline=True)
        kind = card.labels.dataset
        count = DEMO_COUNT.get(model_id, DEFAULT_DEMO_COUNT)
        step(f"{model_id}: stand-in {kind} dataset of {count} images labelled by the original")
        root = build_standin(kind, out / "datasets" / f"{kind}-{model_id}", count=count,
                             labeller=model_labeller(originals[0]))
        subjects = originals + [s for folder in folders for s in bundle_subjects(folder)]
        results += evaluate(subjects, open_dataset(root), out / "evals")
    return results
