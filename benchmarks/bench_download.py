"""Download throughput (fetch_file vs `curl`) and stall handling (how fast a stalled server is given up on).

Throughput: same ~200 MB file, same loopback HTTP server (tests/fetch/loopback_server.py, zero-copy sendfile, in
its own process so neither client shares its interpreter). fetch_file streams into the cache and verifies size +
checksum while streaming (sha256, or md5 and sha256 for an md5 card); curl only writes the file. Median of N runs
each (default 3), cold cache each time.

Stalls: fetch_file against the fault server with the DEFAULT RetryPolicy (or every time threshold multiplied by
--scale): a server that goes silent halfway, one that trickles 1 byte every 10 s from halfway (the issue's case),
and one that answers HTTP 503 to everything. Per scenario: how long after the server stopped sending each try was
declared stalled, and how long until fetch_file gave up. The three run at once (they only wait); about 2 minutes.

Usage: .venv/bin/python benchmarks/bench_download.py [--only throughput|stalls] [--mb 200] [--runs 3] [--scale 1]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
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


def throughput(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="edgezoo-bench-"))
    os.environ["EDGEZOO_CACHE"] = str(work / "cache")
    from fetch_cards import file_entry, make_card

    from edgezoo.fetch import fetch_file
    from edgezoo.core.report import render_table

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


@dataclass
class _Stamped:
    """stderr replacement that remembers when each progress line was written (retry lines mark a stall)."""

    real: object
    lines: list[tuple[float, str]] = field(default_factory=list)

    def write(self, text: str) -> int:
        self.lines.extend((time.monotonic(), line) for line in text.splitlines() if line.strip())
        return self.real.write(text)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return False


_TIME_SETTINGS = ("timeout", "stall_window", "retry_budget", "backoff", "max_backoff")


def stalls(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="edgezoo-bench-stall-"))
    os.environ["EDGEZOO_CACHE"] = str(work / "cache")
    from fetch_cards import file_entry, make_card
    from loopback_server import LoopbackServer, sized

    from edgezoo.core.errors import EdgezooError
    from edgezoo.fetch import fetch_file
    from edgezoo.fetch.policy import SETTINGS, RetryPolicy
    from edgezoo.core.report import render_table

    default = RetryPolicy()
    for name in _TIME_SETTINGS:  # the defaults, or every time threshold scaled
        os.environ.pop(SETTINGS[name].env, None)
        if args.scale != 1:
            os.environ[SETTINGS[name].env] = str(getattr(default, name) * args.scale)
    policy = RetryPolicy.from_env()
    data = sized(8 * default.min_progress)  # 512 KiB: the first half arrives at once, then the fault
    half = len(data) // 2
    scenarios = {
        "silent from halfway": dict(stall_at=half),
        f"1 byte / {10 * args.scale:g} s from halfway": dict(stall_at=half, trickle_every=10 * args.scale),
        "HTTP 503 every time": dict(fail_first=10_000),
    }
    stamped = _Stamped(sys.stderr)
    outcome: dict[str, tuple[float, float, str]] = {}
    with LoopbackServer() as server:
        def run(label: str, name: str, card) -> None:
            t0 = time.monotonic()
            try:
                fetch_file(card, name)
                outcome[label] = (t0, time.monotonic(), "completed (unexpected)")
            except EdgezooError as exc:
                outcome[label] = (t0, time.monotonic(), str(exc).split(" -- ")[0])

        threads = []
        for i, (label, faults) in enumerate(scenarios.items()):
            name = f"s{i}.bin"
            card = make_card(file_entry(name, server.add(name, data, **faults), data), card_id=f"stall-{i}")
            threads.append(threading.Thread(target=run, args=(label, name, card)))
        sys.stderr = stamped
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            sys.stderr = stamped.real
        rows = []
        for i, label in enumerate(scenarios):
            name = f"s{i}.bin"
            t0, t_end, message = outcome[label]
            started = server.files[name].stalls  # when each answer stopped sending
            declared = [t for t, line in stamped.lines if line.strip().startswith(f"{name}: stalled")]
            detect = [d - s for s, d in zip(started, declared)]
            detect.append(t_end - started[-1]) if len(started) > len(declared) else None  # the last try
            first_fault = started[0] if started else t0
            rows.append([label, str(len(server.requests_for(name))),
                         f"{statistics.median(detect):.1f}" if detect else "-",
                         f"{t_end - first_fault:.1f}", f"{t_end - t0:.1f}", _verdict(message)])
    shutil.rmtree(work, ignore_errors=True)
    settings = ", ".join(f"{n}={getattr(policy, n):g}" for n in ("attempts", *_TIME_SETTINGS, "min_progress"))
    scale = "DEFAULT policy" if args.scale == 1 else f"time thresholds x{args.scale:g}"
    print(f"Stalled servers on 127.0.0.1, {scale} ({settings}), {len(data):,}-byte file")
    print(render_table(["server", "tries", "stall declared after s (median)", "gave up after s (from 1st fault)",
                        "total s", "how it ended"], rows))


def _verdict(message: str) -> str:
    """'gave up after 120 s without progress (4 attempts over 2 min 0 s...)' out of the whole error line."""
    m = re.search(r"(gave up after|failed after) .*?(?=; last try|: )", message)
    return m.group(0) if m else message[:100]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("throughput", "stalls"))
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every time threshold (1 = the defaults)")
    args = ap.parse_args()
    if args.only in (None, "throughput"):
        throughput(args)
    if args.only in (None, "stalls"):
        stalls(args)


if __name__ == "__main__":
    main()
