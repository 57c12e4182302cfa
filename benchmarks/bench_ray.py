"""Figures: `edgezoo eval --ray` throughput vs the single-process eval, Ray start-up, scaling projection.

Usage: .venv/bin/python benchmarks/bench_ray.py [--model mobilenet-v1] [--target tflite] [--variant full|reduced]
                                                [--count N] [--address HOST:PORT]
One stand-in bundle (exported into a temp folder) over a stand-in ImageNet of --count images, on one machine:
1. MEASURED: the single-process eval (edgezoo's pooled engine) and Ray with 1 and 2 actors (a local Ray started by
   `--ray auto`, or --address), steady images/s (models loaded) and end-to-end seconds, ratio to single-process;
2. MEASURED: Ray start-up (ray.init of a local Ray), actor start + model load, and the driver's scheduling ceiling
   (shards/s with a no-op function: above it, more nodes stop helping);
3. PROJECTED: images/s and hours for 50,000 images on N nodes of this machine's size: N x the measured rate of
   this node with one actor per core (linear), capped by the measured scheduling ceiling, + the fixed costs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def table(headers, rows) -> str:
    from edgezoo.core.report import render_table

    return render_table(headers, rows)


def _noop_factory():
    return lambda x: x


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mobilenet-v1")
    parser.add_argument("--target", default="tflite")
    parser.add_argument("--variant", choices=("full", "reduced"), default="full")
    parser.add_argument("--count", type=int, default=96)
    parser.add_argument("--address", default="auto", help="auto (a local Ray) or HOST:PORT")
    args = parser.parse_args()

    from edgezoo import zoo
    from edgezoo.datasets import DatasetKind, build_standin, load_image, open_dataset
    from edgezoo.distributed import PoolStats, map_in_order, parse_ray_target, ray_session
    from edgezoo.evaluation.on_ray import run_on_ray
    from edgezoo.distributed.pool import shard_size_for
    from edgezoo.evaluation.engine import run_subject
    from edgezoo.evaluation.subjects import bundle_subjects
    from edgezoo.export.api import export_model
    from edgezoo.standins import StandinVariant

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("EDGEZOO_CACHE", str(Path(tmp) / "cache"))
        exported = export_model(zoo.get_card(args.model), args.target, out_dir=Path(tmp) / "out", standin=True,
                                variant=StandinVariant(args.variant), offline=True)
        (subject,) = bundle_subjects(exported.bundle)[:1]
        dataset = open_dataset(build_standin(DatasetKind.IMAGENET, Path(tmp) / "imagenet", count=args.count))
        run_subject(subject, dataset.samples[:4], load_image, progress=False)  # warm-up
        local = run_subject(subject, dataset.samples, load_image, progress=False)

        rows, runs = [("single process (pooled engine)", "-", f"{local.images_per_s:.1f}", "1.00",
                       f"{local.seconds:.1f}")], {}
        with ray_session(parse_ray_target(args.address)) as session:
            for actors in (1, 2):
                stats = PoolStats()
                t0 = time.perf_counter()
                run = run_on_ray(subject, dataset.samples, actors=actors, progress=False, stats=stats)
                end_to_end = time.perf_counter() - t0
                assert len(run.records) == len(local.records) and all(  # the same records, in the same order
                    a[0] == b[0] and a[1].tobytes() == b[1].tobytes() for a, b in zip(run.records, local.records))
                runs[actors] = (run, stats)
                rows.append((f"Ray, {actors} actor(s)", f"{stats.load_s:.1f}", f"{run.images_per_s:.1f}",
                             f"{run.images_per_s / local.images_per_s:.2f}", f"{end_to_end:.1f}"))
            noop = PoolStats()
            n_noop = 2000
            t0 = time.perf_counter()
            map_in_order(_noop_factory, range(n_noop), actors=2, shard_size=1, progress=False, stats=noop)
            shards_per_s = n_noop / (time.perf_counter() - t0 - noop.load_s)

    per_actor = runs[1][0].images_per_s
    print(f"{subject.card.id} {args.target} ({args.variant} stand-in), {args.count} images, {cores} cores, "
          f"Ray {args.address}: {session.nodes} node(s), {session.cpus} CPU(s)\n")
    print("1. Throughput (MEASURED; images/s with the models loaded; ratio to the single process)")
    print(table(("run", "actor start + load s", "images/s", "ratio", "end-to-end s"), rows))
    print("\n2. Fixed costs (MEASURED)")
    print(table(("what", "value"), [
        ("Ray start-up (ray.init of a local Ray / joining)", f"{session.startup_s:.1f} s"),
        ("actor start + model load, 1 / 2 actors", f"{runs[1][1].load_s:.1f} / {runs[2][1].load_s:.1f} s"),
        ("scheduling ceiling (no-op function, 2 actors, 1 item per shard)", f"{shards_per_s:.0f} shards/s"),
        ("per-actor rate (1 actor alone on this machine)", f"{per_actor:.1f} images/s"),
    ]))
    fixed = session.startup_s + runs[2][1].load_s
    per_node = runs[2][0].images_per_s  # this whole machine busy: one actor per core, contending as on a real node
    proj = []
    for nodes in (1, 2, 4, 8, 16):
        actors = nodes * cores
        shard = shard_size_for(50_000, actors)
        rate = min(nodes * per_node, shards_per_s * shard)
        proj.append((nodes, actors, shard, f"{rate:.0f}", f"{(fixed + 50_000 / rate) / 3600:.2f}"))
    print(f"\n3. PROJECTED for N nodes like this one ({cores} cores, one actor per core): images/s = min(N x "
          f"{per_node:.1f} (the measured 2-actor rate of this node), {shards_per_s:.0f} shards/s x shard size); "
          f"time = {fixed:.0f} s fixed + 50,000 / rate")
    print(table(("nodes", "actors", "shard size", "images/s", "hours for 50,000 images"), proj))


if __name__ == "__main__":
    main()
