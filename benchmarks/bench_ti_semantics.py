"""MLPerf's figure and TI's figure of every zoo bundle, side by side, and what each semantic difference moves.

Usage: .venv/bin/python benchmarks/bench_ti_semantics.py [--variant reduced|full] [--count N] [--r34-count N]

Stand-in models (random weights) exported into a temp folder; stand-in datasets labelled by each original model (its
original then scores 100 % / its own mAP under MLPerf's semantics). Prints two tables:
1. per subject (original and bundles): the MLPerf figure, the TI figure (edgezoo eval --semantics ti: TI's
   edgeai-benchmark arithmetic from config.yaml) and the TI figure's delta against the original's TI figure
   (the conversion's own);
2. per difference, one at a time on one bundle per model: TI's crop rounding / TI's uint8 resize (TI's preprocessing
   with MLPerf's scoring), TI's box clipping and label/threshold handling (MLPerf's preprocessing with TI's
   post-processing and scoring), TI's settings threshold 0.3 instead of the config's, and TI's own model-zoo config
   values (backend pil, mean 128 / scale 0.007812, no INTER_AREA, torchvision means) under TI's semantics.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("mobilenet-v1", "resnet50-v1.5", "ssd-mobilenet-v1", "ssd-resnet34-1200")
# TI's model-zoo config values that differ from edgezoo's (edgeai-modelzoo mlperf/*_config.yaml, docs/TI_CONFIG.md).
TI_MODELZOO = {
    "mobilenet-v1": {"preprocess": {"backend": "pil", "interpolation": None},
                     "session": {"input_mean": [128.0] * 3, "input_scale": [0.007812] * 3}},
    "resnet50-v1.5": {"preprocess": {"backend": "pil", "interpolation": None},
                      "session": {"input_mean": [123.675, 116.28, 103.53]}},
    "ssd-mobilenet-v1": {"session": {"input_mean": [128.0] * 3, "input_scale": [0.007812] * 3}},
    "ssd-resnet34-1200": {"session": {"input_scale": [0.017125, 0.017507, 0.017429]}},
}


def table(headers, rows) -> str:
    from edgezoo.core.report import render_table

    return render_table(headers, rows)


def evaluate_one(subject, dataset, out: Path) -> float:
    from edgezoo.evaluation.api import evaluate

    (result,) = evaluate([subject], dataset, out, progress=False)
    return result.value


def ti_config_subject(bundle: Path, changes: dict, out: Path):
    """TI's semantics on a copy of the bundle whose config.yaml has `changes` merged in (same model file)."""
    import shutil

    import yaml

    from edgezoo.bundle.config import deep_merge
    from edgezoo.evaluation.ti_subjects import ti_bundle_subjects

    copy_dir = out / f"{bundle.parent.name}-{bundle.name}-variant"
    shutil.copytree(bundle, copy_dir, dirs_exist_ok=True)
    config = yaml.safe_load((copy_dir / "config.yaml").read_text())
    (copy_dir / "config.yaml").write_text(yaml.safe_dump(deep_merge(config, changes)))
    return ti_bundle_subjects(copy_dir)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="reduced", choices=("reduced", "full"))
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--r34-count", type=int, default=8)
    args = parser.parse_args()

    from edgezoo import zoo
    from edgezoo.datasets import build_standin, open_dataset
    from edgezoo.evaluation.standin_labels import model_labeller
    from edgezoo.evaluation.subjects import bundle_subjects, original_subjects
    from edgezoo.evaluation.ti_subjects import ti_bundle_subjects, ti_original_subject
    from edgezoo.export.api import export_model
    from edgezoo.standins import StandinVariant
    from edgezoo.zoo.schema import Task

    figures, ablations = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for model_id in MODELS:
            card = zoo.get_card(model_id)
            (original,) = original_subjects(card, standin=True, variant=args.variant, offline=True)
            count = args.r34_count if model_id == "ssd-resnet34-1200" else args.count
            root = build_standin(card.labels.dataset, out / f"data-{model_id}", count=count,
                                 labeller=model_labeller(original))
            dataset = open_dataset(root)
            original_ti = evaluate_one(ti_original_subject(original), dataset, out / "e")
            figures.append((f"{model_id} (original)", evaluate_one(original, dataset, out / "e"), original_ti, "-"))
            bundles = []
            for target in card.recipes:
                result = export_model(card, target, out_dir=out / "bundles", standin=True,
                                      variant=StandinVariant(args.variant), offline=True)
                bundles.append(result.bundle)
                for mlperf, ti in zip(bundle_subjects(result.bundle), ti_bundle_subjects(result.bundle)):
                    value_ti = evaluate_one(ti, dataset, out / "e")
                    figures.append((f"{model_id}/{mlperf.slug}", evaluate_one(mlperf, dataset, out / "e"), value_ti,
                                    f"{value_ti - original_ti:+.2f}"))
            bundle = bundles[0]
            mlperf, ti = bundle_subjects(bundle)[0], ti_bundle_subjects(bundle)[0]
            base = evaluate_one(mlperf, dataset, out / "e")
            name = f"{model_id}/{bundle.name}"
            effects = [("TI's preprocessing (crop rounding / uint8 resize), MLPerf's scoring",
                        dataclasses.replace(mlperf, preprocess=ti.preprocess))]
            if card.task is Task.DETECTION:
                effects.append(("MLPerf's preprocessing, TI's post-processing + scoring (clipping, threshold)",
                                dataclasses.replace(ti, preprocess=mlperf.preprocess)))
                no_threshold = copy.deepcopy(ti.post.__dict__)
                no_threshold["threshold"] = 0.3
                effects.append(("TI's semantics at TI's settings threshold 0.3 (config's not written)",
                                dataclasses.replace(ti, post=type(ti.post)(**no_threshold))))
            effects.append(("TI's semantics", ti))
            effects.append(("TI's semantics with TI's model-zoo config values",
                            ti_config_subject(bundle, TI_MODELZOO[model_id], out)))
            for what, subject in effects:
                value = evaluate_one(subject, dataset, out / "e")
                ablations.append((name, what, f"{base:.2f}", f"{value:.2f}", f"{value - base:+.2f}"))
    print(f"MLPerf's and TI's figures on stand-in data ({args.variant} stand-ins, labelled by each original; "
          f"{args.count} images, ResNet34-SSD {args.r34_count})")
    print(table(("subject", "MLPerf %", "TI %", "TI delta vs original's TI"),
                [(w, f"{m:.2f}", f"{t:.2f}", d) for w, m, t, d in figures]))
    print("\nWhat each difference moves (one bundle per model; base = its MLPerf figure)")
    print(table(("bundle", "semantics", "MLPerf %", "figure %", "delta"), ablations))


if __name__ == "__main__":
    main()
