"""Figures: what safe unpacking costs, and how fast archive bombs are refused.

Usage: .venv/bin/python benchmarks/bench_archive.py [--runs N] [--workdir DIR]

- Unpacking: a model-like archive (5 members of incompressible bytes, 100 MiB in all, the layout of the
  mobilenet-v1 TF tarball: frozen graph, TFLite, checkpoint shards, a text file) as .tgz and as .zip.
  `edgezoo unpack` is edgezoo.fetch.archive.unpack (scan with link simulation and budget, then extraction into a
  temporary folder, atomic rename), once for the two members a card names and once for everything. The baseline
  is the bare standard library on the same file: tarfile.extractall(filter="data") / ZipFile.extractall.
- Bombs, with the default budget: a ~1 MB zip of 1 GiB of zeros and a ~2 MB tgz of 2 GiB, refused by `scan`
  from their declared sizes; the baseline is what extracting them anyway would cost (zip only: 1 GiB written).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fetch"))  # the archive builders the tests use

from archives import tgz_of_zeros, zip_of_zeros  # noqa: E402
from timing import median_ms  # noqa: E402

from edgezoo.core.errors import ArchiveError  # noqa: E402
from edgezoo.core.report import render_table  # noqa: E402
from edgezoo.fetch.archive import scan  # noqa: E402
from edgezoo.fetch.unpack import unpack  # noqa: E402

MiB, GiB = 1 << 20, 1 << 30
MEMBERS = {"mobilenet/frozen.pb": 17 * MiB, "mobilenet/model.tflite": 17 * MiB,
           "mobilenet/model.ckpt.data-00000-of-00001": 65 * MiB, "mobilenet/model.ckpt.index": MiB,
           "mobilenet/info.txt": 4096}
NAMED = ["mobilenet/frozen.pb", "mobilenet/model.tflite"]


def _model_like(work: Path) -> dict[str, Path]:
    src = work / "src"
    for name, size in MEMBERS.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(os.urandom(size))
    tgz, zipped = work / "model.tgz", work / "model.zip"
    with tarfile.open(tgz, "w:gz", compresslevel=1) as tf:
        for name in MEMBERS:
            tf.add(src / name, arcname=name)
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name in MEMBERS:
            zf.write(src / name, arcname=name)
    shutil.rmtree(src)
    return {"tgz": tgz, "zip": zipped}


def _fresh(out: Path) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    return out


def _stdlib(kind: str, archive: Path, out: Path) -> None:
    if kind == "tgz":
        with tarfile.open(archive, "r:*") as tf:
            tf.extractall(_fresh(out), filter="data")
    else:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(_fresh(out))


def _refused(archive: Path, kind: str) -> None:
    try:
        scan(archive, kind)
    except ArchiveError:
        return
    raise SystemExit(f"{archive.name} was not refused")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, choices=range(1, 21), metavar="N")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-archive-", dir=args.workdir))
    try:
        archives, out = _model_like(work), work / "out"
        rows = []
        for kind, archive in archives.items():
            base = median_ms(lambda: _stdlib(kind, archive, out), args.runs)
            for label, members in (("2 named members (34 MiB)", NAMED), ("everything (100 MiB)", [])):
                ms = median_ms(lambda: unpack(archive, kind, _fresh(out), members), args.runs)
                rows.append([kind, label, f"{ms:.0f}", f"{base:.0f}", f"{ms / base:.2f}"])
        print(f"Unpacking a model-like archive, median of {args.runs} runs, 2 cores")
        print(render_table(["archive", "edgezoo unpack", "ms", "stdlib extractall ms", "ratio"], rows))

        zbomb = zip_of_zeros(work / "bomb.zip", members=64, size=16 * MiB)
        tbomb = tgz_of_zeros(work / "bomb.tgz", 2 * GiB)
        rows = []
        for label, bomb, kind in (("zip, 1 GiB of zeros", zbomb, "zip"), ("tgz, 2 GiB of zeros", tbomb, "tgz")):
            refused = median_ms(lambda: _refused(bomb, kind), args.runs)
            # Extracting the zip bomb anyway writes 1 GiB (twice: median_ms warms up); the tgz one is left alone.
            anyway = f"{median_ms(lambda: _stdlib(kind, bomb, out), 1):.0f}" if kind == "zip" else "not run (2 GiB)"
            rows.append([label, f"{bomb.stat().st_size / MiB:.2f}", f"{refused:.1f}", anyway])
        shutil.rmtree(out, ignore_errors=True)
        print(f"\nArchive bombs refused by the default budget, median of {args.runs} runs")
        print(render_table(["bomb", "archive MiB", "refused in ms", "stdlib extractall ms"], rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
