"""Download throughput: edgezoo's fetch_file vs `curl`, same ~200 MB file, same loopback HTTP server.

The server (tests/fetch/loopback_server.py, zero-copy sendfile) runs in its own process so neither client shares
its interpreter. fetch_file streams into the cache and verifies size + checksum while streaming (sha256, or md5
and sha256 for an md5 card); curl only writes the file. Median of N runs each (default 3), cold cache each time.

Usage: .venv/bin/python benchmarks/bench_download.py [--mb 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fetch"))

SERVE = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from loopback_server import LoopbackServer
with LoopbackServer() as srv:
    srv.add("big.bin", Path(sys.argv[2]))
    print(srv.base, flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
"""


def _make_file(path: Path, mb: int) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with path.open("wb") as fh:
        for _ in range(mb):
            block = os.urandom(1 << 20)
            sha.update(block)
            md5.update(block)
            fh.write(block)
    return sha.hexdigest(), md5.hexdigest()


def _median_time(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgezoo-bench-"))
    os.environ["EDGEZOO_CACHE"] = str(work / "cache")
    from fetch_cards import file_entry, make_card

    from edgezoo.fetch import fetch_file
    from edgezoo.report import render_table

    server = None
    try:
        src = work / "big.bin"
        sha, md5 = _make_file(src, args.mb)
        size = src.stat().st_size
        server = subprocess.Popen([sys.executable, "-c", SERVE, str(ROOT / "tests" / "fetch"), str(src)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        base = server.stdout.readline().strip()
        url = f"{base}/big.bin"
        sha_card = make_card(file_entry("big.bin", url, size=size, checksum=f"sha256:{sha}"))
        md5_card = make_card(file_entry("big.bin", url, size=size, checksum=f"md5:{md5}"), card_id="bench-md5")
        curl_out = work / "curl.bin"

        def curl() -> None:
            subprocess.run(["curl", "-s", "-f", "-o", str(curl_out), url], check=True)
            curl_out.unlink()

        def fetch(card) -> None:
            shutil.rmtree(work / "cache", ignore_errors=True)
            path = fetch_file(card, "big.bin", progress=False)
            assert path.stat().st_size == size

        results = {
            "curl (write only)": _median_time(curl, args.runs),
            "fetch_file, sha256 card": _median_time(lambda: fetch(sha_card), args.runs),
            "fetch_file, md5 card (md5+sha256)": _median_time(lambda: fetch(md5_card), args.runs),
            "fetch_file, cache hit (re-verify)": _median_time(
                lambda: fetch_file(sha_card, "big.bin", progress=False), args.runs),
        }
        curl_med = statistics.median(results["curl (write only)"])
        rows = []
        for label, times in results.items():
            med = statistics.median(times)
            rows.append([label, f"{med:.2f}", f"{size / med / 1e6:.0f}", f"{curl_med / med:.2f}"])
        print(f"Download of {size / 1e6:.0f} MB over 127.0.0.1, median of {args.runs} runs, {os.cpu_count()} cores")
        print(render_table(["client", "seconds", "MB/s", "throughput vs curl"], rows))
    finally:
        if server is not None:
            server.stdin.close()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
