"""Progress on long work, on stderr: a live bar on a terminal, sparse lines otherwise (CI logs stay short)."""

from __future__ import annotations

import sys
import time


def step(message: str) -> None:
    """One line announcing a pipeline step ("converting with TFLiteConverter ...")."""
    print(f"  {message}", file=sys.stderr, flush=True)


class _Bar:
    enabled: bool
    tty: bool

    def _draw(self) -> None:
        raise NotImplementedError

    def _end_line(self) -> bool:
        """Draw the bar a last time and end its line on a terminal; False when the bar is disabled."""
        if self.enabled and self.tty:
            self._draw()
            print(file=sys.stderr, flush=True)
        return self.enabled


class ProgressBar(_Bar):
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
        if not self._end_line() or self.tty:
            return
        if failed:
            if self.done:
                print(f"  {self.label}: interrupted after {self.done / 1e6:.1f} MB", file=sys.stderr, flush=True)
        else:
            secs = time.monotonic() - self._start
            print(f"  {self.label}: {self.done / 1e6:.1f} MB in {secs:.1f} s", file=sys.stderr, flush=True)


class CountBar(_Bar):
    """Progress over a known number of items (images): count, items/s and ETA; sparse lines off a terminal."""

    def __init__(self, label: str, total: int, *, unit: str = "images", enabled: bool = True) -> None:
        self.label, self.total, self.unit, self.done = label, total, unit, 0
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._start = self._last = time.monotonic()

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self._start, 1e-9)

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        # A terminal redraws 10 times a second; a log gets a line every 10 s at most.
        if self.enabled and now - self._last > (0.1 if self.tty else 10.0):
            self._last = now
            self._draw()

    def _draw(self) -> None:
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        frac = self.done / self.total if self.total else 1.0
        text = (f"  {self.label} [{'#' * int(frac * 30):<30}] {self.done}/{self.total} {self.unit} "
                f"{rate:6.1f}/s ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        print(("\r" + text) if self.tty else text, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self, *, failed: bool = False) -> None:
        if not self._end_line():
            return
        secs = time.monotonic() - self._start
        state = "interrupted after" if failed else "done:"
        print(f"  {self.label}: {state} {self.done}/{self.total} {self.unit} in {secs:.1f} s "
              f"({self.rate():.1f}/s)", file=sys.stderr, flush=True)
