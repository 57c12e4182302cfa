"""Command-line interface: parse, call the Python API, print. No logic lives here.

Each command is a small module in edgezoo.commands exposing `register(subparsers)`; those modules import nothing
heavy at module level, so `edgezoo --help` and `edgezoo list` never load TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from edgezoo import __version__
from edgezoo.core import native_logs
from edgezoo.core.errors import EdgezooError, disk_full, is_disk_full
from edgezoo.core.interrupts import report_interrupt, tracking_completed

# Order = order in --help.
COMMAND_MODULES = ("zoo_cmds", "fetch_cmd", "cache_cmd", "export_cmd", "quantize_cmd", "verify_cmd", "check_cmd",
                   "eval_cmd", "bench_cmd", "dataset_cmd", "demo_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgezoo",
        description="MLPerf inference vision models -> verified, TIDL-ready TFLite/ONNX artifacts.",
        epilog="Exit codes: 0 success, 1 verification failed, 2 bad input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"edgezoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"edgezoo.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # TensorFlow's C++ INFO/WARNING lines (CPU feature notes) drown the progress lines; the user can still override.
    # TF 2.21 prints its absl and oneDNN notices before reading this: native_logs catches those (and LiteRT's).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    native_logs.install()
    parser = build_parser()
    args = parser.parse_args(argv)
    with tracking_completed() as completed:
        try:
            return int(args.handler(args) or 0)
        except EdgezooError as exc:
            print(f"edgezoo: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            # The last safety net: the places that write convert a full disk themselves, naming their folder.
            folder = os.path.dirname(exc.filename) if exc.filename else "the output folder or the cache"
            print(f"edgezoo: error: {disk_full(exc, folder or '.', 'writing')}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return report_interrupt(completed)  # lists the bundles that completed before it


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
