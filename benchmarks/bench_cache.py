"""`edgezoo cache` costs: list and clean --stale on a populated cache, verify throughput against plain sha256, and
what the leftover sweep adds to every stand-in fetch.

The cache is filled in a temporary folder: FILES published files of a test card (a tenth of them with a .part
next to them, so that list probes their locks), one big file of MB MiB for verify, one stand-in.

Usage: .venv/bin/python benchmarks/bench_cache.py [--files 200] [--mb 256] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from timing import median_ms

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fetch"))


def _fill(folder: Path, files: int, mb: int) -> list[dict]:
    """Published files written straight into the cache layout; returns their card entries."""
    from fetch_cards import file_entry

    folder.mkdir(parents=True)
    entries = []
    for i in range(files):
        data = os.urandom(4096)
        (folder / f"f{i}.bin").write_bytes(data)
        if i % 10 == 0:
            (folder / f"f{i}.bin.part").write_bytes(data[:100])
        entries.append(file_entry(f"f{i}.bin", f"https://x.example/f{i}.bin", data))
    sha = hashlib.sha256()
    with (folder / "big.bin").open("wb") as fh:
        for _ in range(mb):
            block = os.urandom(1 << 20)
            sha.update(block)
            fh.write(block)
    entries.append(file_entry("big.bin", "https://x.example/big.bin", size=mb << 20, checksum=f"sha256:{sha.hexdigest()}"))
    return entries


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgezoo-bench-cache-"))
    os.environ["EDGEZOO_CACHE"] = str(work)
    from fetch_cards import file_entry, make_card

    from edgezoo import zoo
    from edgezoo.fetch import resolve_file
    from edgezoo.fetch.cache_admin import clean, clean_plan, list_cache, verify_cache
    from edgezoo.fetch.leftovers import sweep
    from edgezoo.core.report import render_table

    try:
        entries = _fill(work / "published" / "bench", args.files, args.mb)
        card = make_card(*entries, file_entry("s.onnx", "https://x.example/s.onnx", standin="tiny-bytes"),
                         card_id="bench")
        zoo.all_cards = lambda: (card,)  # the benchmark's card is the zoo
        standin = resolve_file(card, "s.onnx", standin=True).path
        n = len(list_cache())

        big = work / "published" / "bench" / "big.bin"
        plain_ms = median_ms(lambda: _sha256(big), args.runs)
        verify_ms = median_ms(lambda: verify_cache(progress=False), args.runs)
        hit_ms = median_ms(lambda: resolve_file(card, "s.onnx", standin=True), args.runs * 20)
        sweep_ms = median_ms(lambda: sweep(standin.parent), args.runs * 20)
        list_ms = median_ms(list_cache, args.runs)
        plan = clean_plan(stale=True)
        t0 = time.perf_counter()
        assert len(clean(plan).removed) == len(plan)  # once: it removes them
        clean_ms = (time.perf_counter() - t0) * 1000

        mb = args.mb * (1 << 20) / 1e6
        rows = [[f"cache list ({n} entries, {args.files // 10} .part lock probes)", f"{list_ms:.0f} ms", "-"],
                [f"cache verify ({args.files} x 4 KiB + {args.mb} MiB)", f"{verify_ms:.0f} ms",
                 f"{mb / (verify_ms / 1000):.0f} MB/s"],
                [f"plain sha256 of the {args.mb} MiB file (hashlib.file_digest)", f"{plain_ms:.0f} ms",
                 f"{mb / (plain_ms / 1000):.0f} MB/s"],
                [f"cache clean --stale ({len(plan)} .part files)", f"{clean_ms:.1f} ms", "-"],
                ["stand-in cache hit (resolve_file, 4 KiB, sweep included)", f"{hit_ms * 1000:.0f} us", "-"],
                ["  of which: leftover sweep of its folder", f"{sweep_ms * 1000:.0f} us",
                 f"{sweep_ms / hit_ms:.0%} of the hit"]]
        print(f"edgezoo cache, median of {args.runs} runs ({args.runs * 20} for the stand-in rows), "
              f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
        print(render_table(["operation", "time", "rate"], rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
