"""Progress on long work, on stderr: a live bar on a terminal, sparse lines otherwise (CI logs stay short)."""

from __future__ import annotations

import sys
import time


def step(message: str) -> None:
    """One line announcing a pipeline step ("converting with TFLiteConverter ...")."""
    print(f"  {message}", file=sys.stderr, flush=True)


class ProgressBar:
    def __init__(self, label: str, total: int | None, *, enabled: bool = True) -> None:
        self.label, self.total, self.done = label, total, 0
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and self.tty and now - self._last > 0.1:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        mb = self.done / 1e6
        rate = mb / max(time.monotonic() - self._start, 1e-6)
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            text = f"\r  {self.label} [{bar:<30}] {frac:6.1%} {mb:8.1f} MB {rate:6.1f} MB/s"
        else:
            text = f"\r  {self.label} {mb:8.1f} MB {rate:6.1f} MB/s"
        print(text, end="", file=sys.stderr, flush=True)

    def close(self, *, failed: bool = False) -> None:
        """End the bar. On failure say how far it got (the error itself is the caller's to report)."""
        if not self.enabled:
            return
        if self.tty:
            self._draw()
            print(file=sys.stderr, flush=True)
        elif failed:
            if self.done:
                print(f"  {self.label}: interrupted after {self.done / 1e6:.1f} MB", file=sys.stderr, flush=True)
        else:
            secs = time.monotonic() - self._start
            print(f"  {self.label}: {self.done / 1e6:.1f} MB in {secs:.1f} s", file=sys.stderr, flush=True)
