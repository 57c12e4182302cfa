"""Ctrl-C must not undo finished work.

A bundle is complete the moment it is renamed into place (bundle/staging.py records it here, with Ctrl-C held back
for the few renames of the swap). When an interrupt arrives later -- while the report prints, or while the next model of a
multi-model run converts -- the command reports what completed: if every export it was asked for had completed, the
run stands (exit 0, or 1 when a parity check failed) with a note; otherwise exit 130 and the message lists the
bundles that are complete and kept.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for Ctrl-C

_logs: list[list[Path]] = []  # one list per open `tracking_completed()` block


def record_completed(bundle: Path) -> None:
    """Called by the bundle right after a bundle is in place."""
    for log in _logs:
        log.append(bundle)


@contextmanager
def tracking_completed() -> Iterator[list[Path]]:
    """The bundles completed while the block runs, in order (blocks may nest; each sees its own)."""
    log: list[Path] = []
    _logs.append(log)
    try:
        yield log
    finally:
        # By identity: two logs with the same bundles are equal lists, and list.remove would take the first.
        _logs[:] = [other for other in _logs if other is not log]


@contextmanager
def sigint_held() -> Iterator[None]:
    """Hold a Ctrl-C back until the block has finished, then raise it.

    Only the default handler is replaced, and only in the main thread (where Python delivers signals); a caller that
    installed its own SIGINT handler keeps it.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def report_interrupt(completed: Sequence[Path], *, planned: int | None = None, failed: int = 0) -> int:
    """Say on stderr what an interrupt left behind and return the exit code.

    `planned` is how many exports the command was asked for (None: unknown), `failed` how many of them had already
    ended in an error; bundles in a `.failed` folder count as completed exports whose parity failed.
    """
    names = ", ".join(str(p) for p in completed)
    parity_failed = any(p.name.endswith(".failed") for p in completed)
    if planned is not None and completed and len(completed) + failed >= planned:
        what = "the export had completed" if planned == 1 else f"all {planned} exports had completed"
        print(f"edgezoo: interrupted after {what}; the result stands: {names}", file=sys.stderr)
        return 1 if parity_failed or failed else 0
    if not completed:
        print("edgezoo: interrupted", file=sys.stderr)
    else:
        after = f" after {len(completed)} of {planned} exports" if planned is not None else ""
        print(f"edgezoo: interrupted{after}; the completed bundles are kept: {names}", file=sys.stderr)
    return INTERRUPTED_EXIT
