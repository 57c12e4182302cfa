"""What the bounds on untrusted inputs cost and save: image decompression bombs (the pixel budget, peak memory of
one bomb and of the decoding pool), refusing a --ray port that answers but is not Ray, the nesting check in front of
json.loads, and rejecting a million-line val_map.txt.

Usage: .venv/bin/python benchmarks/bench_input_bounds.py [--no-ray] [--ray-baseline-cap S]
Every memory figure is the peak RSS (ru_maxrss from os.wait4) of a fresh child process that does only that case;
"python + imports" is the same child doing nothing else, the baseline the others are read against.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent)]  # edgezoo, and tests/ for its real-file helpers


def table(headers, rows) -> str:
    from edgezoo.core.report import render_table

    return render_table(headers, rows)


def child(code: str) -> tuple[float, float, str]:
    """(seconds, peak MB, stdout) of `python -c code` in a fresh process (the code prints its own ru_maxrss last)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path[:2])}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True)
    t0 = time.perf_counter()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"child failed:\n{err[-3000:]}")
    peak = float(out.strip().splitlines()[-1].split()[-1]) / 1024
    return seconds, peak, out


_PEAK = "import resource; print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
_IMPORTS = "import cv2, numpy, PIL.Image; import edgezoo.datasets, edgezoo.evaluation.engine"


def bombs(folder: Path) -> None:
    from edgezoo.datasets.image_files import IN_FLIGHT_PIXELS, MAX_IMAGE_PIXELS
    from tests.datasets.dataset_files import png_bomb

    bomb = png_bomb(folder / "bomb.png", 30000, 30000)
    side = int(MAX_IMAGE_PIXELS ** 0.5)
    largest = png_bomb(folder / "largest.png", side, side)
    big = [png_bomb(folder / "big0.png", 7000, 7000)]
    for i in range(1, 8):
        target = folder / f"big{i}.png"
        target.write_bytes(big[0].read_bytes())
        big.append(target)
    sample = ("from edgezoo.datasets import Sample\n"
              "s = lambda p: Sample(index=0, path=p, label=None, image_id=None, height=0, width=0)\n")
    timed = "import time\nt0 = time.perf_counter()\n"
    done = "print('SECONDS', time.perf_counter() - t0)\n" + _PEAK
    cases = [
        ("python + imports (baseline)", f"{_IMPORTS}\n{_PEAK}", "-"),
        ("bomb: cv2.imread (MLPerf's loader; before)", f"{_IMPORTS}\n{timed}import cv2\n"
         f"img = cv2.imread({str(bomb)!r})\nassert img.shape == (30000, 30000, 3)\n{done}", "decoded: 2.5 GiB"),
        ("bomb: load_image (header check)", f"{_IMPORTS}\n{sample}{timed}from edgezoo.datasets import load_image\n"
         f"from edgezoo.core.errors import DatasetError\ntry:\n    load_image(s({str(bomb)!r}))\nexcept DatasetError:\n"
         f"    pass\nelse:\n    raise SystemExit('not refused')\n{done}", "refused (exit 2 / skipped)"),
        (f"largest accepted ({side}x{side}): load_image", f"{_IMPORTS}\n{sample}{timed}"
         f"from edgezoo.datasets import load_image\nassert load_image(s({str(largest)!r})).shape[0] == {side}\n{done}",
         "decoded"),
    ]
    pool = (f"{_IMPORTS}\n{sample}{timed}from edgezoo.datasets import load_image\n"
            "from edgezoo.datasets import image_files\nfrom edgezoo.evaluation.engine import prepared_inputs\n"
            "GATE\npaths = " + repr([str(p) for p in big]) + "\n"
            "out = [t for _, t, _ in prepared_inputs([s(p) for p in paths], load_image, "
            "lambda im: im[:2, :2].copy(), workers=4)]\nassert len(out) == 8\n" + done)
    cases += [
        ("pool: 8 x 7000x7000, 4 threads, no shared budget", pool.replace(
            "GATE", "image_files.DECODE_GATE = image_files.PixelGate(1 << 62)"), "all decoded"),
        ("pool: 8 x 7000x7000, 4 threads, shared budget", pool.replace("GATE", ""), "all decoded"),
    ]
    rows = []
    for name, code, outcome in cases:
        seconds, peak, out = child(code)
        inner = next((float(line.split()[1]) for line in out.splitlines() if line.startswith("SECONDS")), None)
        rows.append((name, f"{inner:.2f}" if inner is not None else "-", f"{peak:,.0f}", outcome))
    print(f"Image decompression bombs: a 30000x30000 PNG of {bomb.stat().st_size / 1024:,.0f} KiB; pixel budget "
          f"{MAX_IMAGE_PIXELS:,} per image ({side}x{side}), {IN_FLIGHT_PIXELS:,} in flight per process; peak RSS "
          f"of a fresh child per row")
    print(table(["case", "seconds", "peak MB", "outcome"], rows))


def ray_ports(with_ray: bool, baseline_cap: float) -> None:
    import http.server

    from edgezoo.distributed.cluster import ClusterError, check_ray_target

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    targets = [("HTTP server", f"127.0.0.1:{server.server_address[1]}"),
               ("port that accepts and never answers", f"127.0.0.1:{silent.getsockname()[1]}"),
               ("closed port", f"127.0.0.1:{closed_port}")]
    cluster = None
    if with_ray:
        from tests.distributed.ray_nodes import Cluster, _start_node, free_port

        port = free_port()
        cluster = Cluster(f"127.0.0.1:{port}", Path(tempfile.mkdtemp(prefix="ezr-", dir="/tmp")))
        _start_node(cluster, ["--head", "--port", str(port), "--temp-dir", str(cluster.temp_dir),
                              "--include-dashboard=false", "--ray-client-server-port", str(free_port())])
        targets.append(("a real Ray head (accepted)", cluster.address))
    rows = []
    try:
        for name, address in targets:
            times, outcome = [], ""
            for _ in range(3):
                t0 = time.perf_counter()
                try:
                    check_ray_target(address)
                    outcome = "accepted"
                except ClusterError as exc:
                    outcome = str(exc).split(" (", 1)[-1].split(")")[0][:48]
                times.append(time.perf_counter() - t0)
            rows.append((name, f"{statistics.median(times):.3f}", outcome))
        if not with_ray:
            return
        # The baseline: what `--ray HOST:PORT` did before the greeting, ray.init on the HTTP port, capped.
        code = ("import ray, time\nt0 = time.perf_counter()\ntry:\n"
                f"    ray.init(address='127.0.0.1:{server.server_address[1]}', logging_level='ERROR')\n"
                "except Exception as exc:\n    print('FAILED', type(exc).__name__)\n"
                "print('SECONDS', time.perf_counter() - t0)\n")
        t0 = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=baseline_cap,
                                  env={**os.environ, "RAY_AUTH_MODE": "disabled"})
            outcome = done.stdout.strip().splitlines()[0] if done.stdout.strip() else "returned"
            rows.append(("baseline: ray.init on the HTTP server", f"{time.perf_counter() - t0:.1f}", outcome))
        except subprocess.TimeoutExpired:
            rows.append(("baseline: ray.init on the HTTP server", f"> {baseline_cap:.0f}",
                         f"still waiting, stopped after {baseline_cap:.0f} s"))
    finally:
        server.shutdown()
        silent.close()
        if cluster is not None:
            cluster.stop()
        _print_ports(rows)


def _print_ports(rows) -> None:
    print("--ray HOST:PORT checked before anything loads (TCP connect + HTTP/2 greeting, 5 s bound), median of 3")
    print(table(["target", "seconds", "outcome"], rows))


def json_and_val_map(folder: Path) -> None:
    import numpy as np

    from edgezoo.datasets import open_dataset
    from edgezoo.core.errors import DatasetError
    from edgezoo.core.safe_load import load_json

    rng = np.random.default_rng(0)
    anns = [{"id": i, "image_id": i % 5000, "category_id": 1, "bbox": [1.5, 2.5, 3.5, 4.5], "area": 12.25,
             "iscrowd": 0, "segmentation": [rng.random(60).round(2).tolist()]} for i in range(36_781)]
    data = json.dumps({"images": [{"id": i, "file_name": f"{i:012d}.jpg", "height": 480, "width": 640}
                                  for i in range(5000)], "annotations": anns}).encode()

    def median(fn, runs=3):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    plain, bounded = median(lambda: json.loads(data)), median(lambda: load_json(data, "x"))
    lines = "".join(f"val/ILSVRC2012_val_{i:08d}.JPEG {i % 1000}\n" for i in range(1_000_000))
    (folder / "val_map.txt").write_text(lines)

    def reject():
        try:
            open_dataset(folder)
        except DatasetError:
            return
        raise SystemExit("not rejected")

    read = median(lambda: (folder / "val_map.txt").read_text().splitlines())
    rejected = median(reject)
    rows = [
        (f"COCO-sized annotations ({len(data) / 1e6:.1f} MB): json.loads (baseline)", f"{plain:.2f}", "1.00"),
        ("... load_json (nesting checked first)", f"{bounded:.2f}", f"{bounded / plain:.2f}"),
        ("1,000,000-line val_map.txt: read + split lines (baseline)", f"{read:.2f}", "1.00"),
        ("... open_dataset, first image missing (every line checked)", f"{rejected:.2f}", f"{rejected / read:.2f}"),
    ]
    print("Bounded JSON and the val_map.txt check, median of 3")
    print(table(["case", "seconds", "vs baseline"], rows))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-ray", action="store_true",
                        help="no real Ray head and no ray.init baseline (the refusals are still measured)")
    parser.add_argument("--ray-baseline-cap", type=float, default=60.0, metavar="S")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgezoo-bench-bounds-") as tmp:
        bombs(Path(tmp))
        print()
        json_and_val_map(Path(tmp))
        print()
        ray_ports(not args.no_ray, args.ray_baseline_cap)


if __name__ == "__main__":
    main()
