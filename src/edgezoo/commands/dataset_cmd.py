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
    s.set_defaults(handler=run_standin)


def run_standin(args: argparse.Namespace) -> int:
    from edgezoo.datasets import open_dataset
    from edgezoo.datasets.standin import DEFAULT_COUNT, build_standin

    count = DEFAULT_COUNT if args.count is None else args.count
    root = build_standin(args.kind, args.out, count=count, seed=args.seed)
    print(f"STAND-IN {args.kind} dataset in {root}: {open_dataset(root).describe()}")
    return 0
