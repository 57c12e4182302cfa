"""Run every benchmark script in this folder, one after the other, each printing its own table.

    make bench                      # all of them
    python benchmarks/run_all.py cli download   # only bench_cli.py and bench_download.py

The figures recorded in RESULTS.md came from these scripts; re-run to refresh them on your machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        wanted = {f"bench_{name.removeprefix('bench_').removesuffix('.py')}.py" for name in argv}
        unknown = wanted - {s.name for s in scripts}
        if unknown:
            print(f"run_all: no benchmark {', '.join(sorted(unknown))}; have: "
                  f"{', '.join(s.stem.removeprefix('bench_') for s in scripts)}", file=sys.stderr)
            return 2
        scripts = [s for s in scripts if s.name in wanted]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        start = time.monotonic()
        code = subprocess.call([sys.executable, str(script)])
        print(f"=== {script.name}: exit {code}, {time.monotonic() - start:.0f} s ===", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"run_all: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
