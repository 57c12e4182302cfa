"""`edgezoo dataset standin imagenet|coco --out DIR`: a small STAND-IN dataset in MLPerf's layout, offline."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="datasets in MLPerf's layouts (stand-ins for offline runs)",
                       description="Datasets in the layouts MLPerf's reference app reads: ImageNet (val_map.txt) "
                                   "and COCO (annotations/instances_val2017.json + val2017/).")
    actions = p.add_subparsers(dest="dataset_action", metavar="ACTION", required=True)
    s = actions.add_parser("standin", help="build a small STAND-IN dataset offline",
                           description="Build a small dataset in MLPerf's exact ImageNet or COCO layout from the "
                                       "photographs that ship with scikit-image (random crops, odd sizes, colour "
                                       "shifts, one grayscale image, JPEG). Its labels/boxes are not ImageNet's or "
                                       "COCO's: the folder holds STAND-IN.txt and every report on it says STAND-IN. "
                                       "Replaces an earlier stand-in at --out, never anything else.")
    s.add_argument("kind", choices=("imagenet", "coco"), help="which layout")
    s.add_argument("--out", type=Path, required=True, metavar="DIR", help="the dataset folder to write")
    s.add_argument("--count", type=int, default=None, metavar="N", help="number of images (default 32, at most 1000)")
    s.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the crops and colour shifts (default 0)")
    s.add_argument("--labels-from", dest="labels_from", metavar="MODEL",
                   help="make the labels/boxes from MODEL's stand-in original's own predictions (its original then "
                        "scores 100 %% top-1 / its own mAP, and an artifact's delta is what the conversion changed); "
                        "default: the photographs' own hand-placed labels, which random stand-in weights cannot score")
    s.add_argument("--standin-variant", choices=("full", "reduced"), default="full",
                   help="with --labels-from: which stand-in of MODEL labels the images (default full)")
    s.set_defaults(handler=run_standin)


def run_standin(args: argparse.Namespace) -> int:
    from edgezoo.datasets import open_dataset
    from edgezoo.datasets.standin import DEFAULT_COUNT, build_standin

    count = DEFAULT_COUNT if args.count is None else args.count
    labeller = _labeller(args.labels_from, args.kind, args.standin_variant) if args.labels_from else None
    root = build_standin(args.kind, args.out, count=count, seed=args.seed, labeller=labeller)
    print(f"STAND-IN {args.kind} dataset in {root}: {open_dataset(root).describe()}")
    return 0


def _labeller(model: str, kind: str, variant: str):
    """The labeller the demo uses: MODEL's stand-in original predicts, its predictions become the ground truth."""
    from edgezoo import zoo
    from edgezoo.core.errors import EdgezooError
    from edgezoo.evaluation.standin_labels import model_labeller
    from edgezoo.evaluation.subjects import original_subjects

    card = zoo.get_card(model)
    if card.labels.dataset != kind:
        raise EdgezooError(f"--labels-from {card.id}: it predicts {card.labels.dataset} labels, not {kind}",
                           hint=f"build a {card.labels.dataset} dataset, or name a {kind} model")
    return model_labeller(original_subjects(card, standin=True, variant=variant, offline=True)[0])
