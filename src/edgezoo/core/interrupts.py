"""Ctrl-C must not undo finished work.

A bundle is complete the moment it is renamed into place (bundle/staging.py records it here, with Ctrl-C held back
for the few renames of the swap). When an interrupt arrives later -- while the report prints, or while the next model of a
multi-model run converts -- the command reports what completed: if every export it was asked for had completed, the
run stands (exit 0, or 1 when a parity check failed) with a note; otherwise exit 130 and the message lists the
bundles that are complete and kept.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
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


_settled: list[object] = []  # SIGINT's handler before settle(), while the result stands


def settle() -> None:
    """The command's result is decided (published, and about to be printed): from here on a Ctrl-C changes nothing.
    SIGINT is ignored -- through the rest of the command and, from the `edgezoo` console entry, through interpreter
    teardown, where TensorFlow's Session.__del__ and thread joins would otherwise turn it into exit 130 or a
    traceback. Main thread with Python's default handler only; `unsettle()` puts the handler back."""
    if threading.current_thread() is threading.main_thread() and not _settled and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _settled.append(signal.signal(signal.SIGINT, signal.SIG_IGN))


def unsettle() -> None:
    """Undo settle() (for callers of cli.main inside a longer-lived process, e.g. tests)."""
    while _settled:
        signal.signal(signal.SIGINT, _settled.pop())  # type: ignore[arg-type]


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


@contextmanager
def sigint_ends_process(cleanup: Callable[[], None], message: str = "interrupted") -> Iterator[None]:
    """Around foreign code that a Python exception must not unwind (MLPerf LoadGen's run loop: its C++ calls back
    into Python, and a KeyboardInterrupt raised inside a callback aborts it, or corrupts it until std::bad_alloc).

    Within the block a Ctrl-C raises nothing; a watcher thread, woken by the signal itself (signal.set_wakeup_fd),
    runs `cleanup()`, prints "edgezoo: MESSAGE" and ends the process with 130 at once, wherever the main thread is
    (it may be inside C++ for as long as the foreign code runs). A Ctrl-C that lands while the block is ending is
    raised as KeyboardInterrupt after it. Only in the main thread with Python's default handler (as sigint_held)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    seen = threading.Event()
    closing = threading.Event()

    def watch() -> None:
        while True:
            data = os.read(read_fd, 64)
            if signal.SIGINT in data:
                seen.set()
                if not closing.is_set():
                    _end_process(cleanup, message)
            if closing.is_set() or not data:
                return

    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: None)  # the watcher acts, not this thread
    watcher = threading.Thread(target=watch, name="edgezoo-sigint", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        closing.set()
        os.write(write_fd, b"\0")  # wakes the watcher
        watcher.join()
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGINT, previous)
        os.close(read_fd)
        os.close(write_fd)
    if seen.is_set():
        raise KeyboardInterrupt


def _end_process(cleanup: Callable[[], None], message: str) -> None:
    try:
        cleanup()
    finally:
        try:
            print(f"edgezoo: {message}", file=sys.stderr, flush=True)
        finally:
            os._exit(INTERRUPTED_EXIT)  # no interpreter teardown: the foreign code's threads are still running
