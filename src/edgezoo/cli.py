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
from typing import NoReturn

from edgezoo import __version__
from edgezoo.core import native_logs
from edgezoo.core.errors import EdgezooError, disk_full, is_disk_full
from edgezoo.core.interrupts import report_interrupt, settle, tracking_completed, unsettle

# Order = order in --help.
COMMAND_MODULES = ("zoo_cmds", "fetch_cmd", "cache_cmd", "export_cmd", "quantize_cmd", "verify_cmd", "check_cmd",
                   "eval_cmd", "bench_cmd", "dataset_cmd", "demo_cmd")


class Parser(argparse.ArgumentParser):
    """argparse with edgezoo's one-line errors (exit 2) instead of a usage block, for every command and action
    (subparsers are made of the same class)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("edgezoo").strip()
        self.exit(2, f"edgezoo: error: {where + ': ' if where else ''}{' '.join(message.split())} "
                     f"-- see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="edgezoo",
        description="MLPerf inference vision models -> verified, TIDL-ready TFLite/ONNX artifacts.",
        epilog="Exit codes: 0 success, 1 verification failed, 2 bad input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"edgezoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"edgezoo.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, console: bool = False) -> int:
    """Run one command; its exit code. `console` (the `edgezoo` command itself): once the command has its result,
    Ctrl-C stays ignored until the process has exited (see edgezoo.interrupts.settle)."""
    try:
        return _main(argv)
    finally:
        if not console:
            unsettle()


def console() -> NoReturn:
    """The `edgezoo` console command and `python -m edgezoo`."""
    sys.exit(main(console=True))


def _main(argv: Sequence[str] | None) -> int:
    # TensorFlow's C++ INFO/WARNING lines (CPU feature notes) drown the progress lines; the user can still override.
    # TF 2.21 prints its absl and oneDNN notices before reading this: native_logs catches those (and LiteRT's).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    native_logs.install()
    parser = build_parser()
    args = parser.parse_args(argv)
    with tracking_completed() as completed:
        code: int | None = None
        try:
            code = int(args.handler(args) or 0)
            settle()  # the result stands: a Ctrl-C from here to the process's exit changes nothing
            return code
        except EdgezooError as exc:
            settle()
            print(f"edgezoo: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            settle()
            # The last safety net: the places that write convert a full disk themselves, naming their folder.
            folder = os.path.dirname(exc.filename) if exc.filename else "the output folder or the cache"
            print(f"edgezoo: error: {disk_full(exc, folder or '.', 'writing')}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            if code is not None:  # landed between the command's return and settle()
                return code
            return report_interrupt(completed)  # lists the bundles that completed before it


if __name__ == "__main__":  # pragma: no cover
    console()
