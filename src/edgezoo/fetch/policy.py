"""When a download counts as failed, and how long edgezoo keeps retrying it.

Three rules, all thresholds in `RetryPolicy` (defaults below, each overridable by an EDGEZOO_FETCH_* variable):

- read timeout: no byte at all for `timeout` seconds (also the connect timeout);
- minimum progress: a transfer must advance by `min_progress` bytes within every `stall_window` seconds, so a
  server that trickles one byte every few seconds is given up on like a silent one;
- retry budget: one URL is retried for at most `retry_budget` seconds without the download advancing (by
  `min_progress` bytes); a slow but steady download is never cut by it, a dead or stalled server is.
`attempts` still bounds the number of tries, whichever limit comes first.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, fields

from edgezoo.core.errors import FetchError


@dataclass(frozen=True)
class Setting:
    env: str
    low: float
    high: float
    unit: str
    whole: bool = False  # an int setting (counts, bytes)


# Why these ranges: below them a download cannot work at all (0 attempts, a zero timeout); above them edgezoo
# would wait for hours or days, which no user means.
SETTINGS = {
    "attempts": Setting("EDGEZOO_FETCH_ATTEMPTS", 1, 100, "tries", whole=True),
    "backoff": Setting("EDGEZOO_FETCH_BACKOFF", 0, 600, "seconds"),
    "max_backoff": Setting("EDGEZOO_FETCH_MAX_BACKOFF", 0, 3600, "seconds"),
    "timeout": Setting("EDGEZOO_FETCH_TIMEOUT", 0.01, 3600, "seconds"),
    "stall_window": Setting("EDGEZOO_FETCH_STALL_WINDOW", 0.01, 3600, "seconds"),
    "min_progress": Setting("EDGEZOO_FETCH_MIN_PROGRESS", 1, 1 << 30, "bytes", whole=True),
    "retry_budget": Setting("EDGEZOO_FETCH_RETRY_BUDGET", 0.01, 86400, "seconds"),
}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # total tries of one URL (the first one included)
    backoff: float = 1.0  # seconds before the 2nd try; doubles after each failure
    max_backoff: float = 30.0
    timeout: float = 30.0  # seconds to connect, and without any byte, before a connection counts as dropped
    stall_window: float = 30.0  # a transfer must advance by `min_progress` bytes within this many seconds ...
    min_progress: int = 64 * 1024  # ... else it has stalled (a transient failure, retried)
    retry_budget: float = 120.0  # seconds one URL may go on failing without the download advancing

    def __post_init__(self) -> None:
        for f in fields(self):
            value, rng = getattr(self, f.name), SETTINGS[f.name]
            if rng.whole and (isinstance(value, bool) or not isinstance(value, int)):
                raise FetchError(f"RetryPolicy.{f.name}={value!r} is not a whole number", hint=_hint(f.name))
            if not (isinstance(value, (int, float)) and rng.low <= value <= rng.high):  # also refuses NaN
                raise FetchError(f"RetryPolicy.{f.name}={value!r} is out of range", hint=_hint(f.name))

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        """The defaults, each overridable by its EDGEZOO_FETCH_* variable (tests use tiny thresholds)."""
        values = {}
        for name, rng in SETTINGS.items():
            raw = os.environ.get(rng.env, "").strip()
            if not raw:
                continue
            try:
                value = int(raw) if rng.whole else float(raw)
            except ValueError:
                kind = "a whole number" if rng.whole else "a number"
                raise FetchError(f"{rng.env}={raw!r} is not {kind}", hint=_hint(name)) from None
            if not (rng.low <= value <= rng.high):
                raise FetchError(f"{rng.env}={raw!r} is out of range", hint=_hint(name))
            values[name] = value
        return cls(**values)

    def delay(self, failures: int) -> float:
        return min(self.backoff * 2 ** (failures - 1), self.max_backoff)


def _hint(name: str) -> str:
    rng = SETTINGS[name]
    show = (lambda x: f"{int(x):,}") if rng.whole else (lambda x: f"{x:g}")
    return (f"{rng.env} takes {rng.unit} from {show(rng.low)} to {show(rng.high)} "
            f"(default {show(getattr(RetryPolicy, name))}); fix or unset it")


def seconds(value: float) -> str:
    """A duration for messages: '0.5 s', '30 s', '2 min 5 s'."""
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    return f"{int(value // 60)} min {value % 60:.0f} s"


class TransientFailure(Exception):
    """A failure worth retrying (the message says what happened)."""


class Stalled(TransientFailure):
    """The transfer broke the read-timeout or minimum-progress rule, or the retry budget ran out."""


class Watchdog:
    """The minimum-progress rule and the retry budget of one URL, across all its attempts.

    The download loop calls `attempt()` before each request, `wait_limit()` before each blocking call (its
    socket timeout) and `advanced()` after each block of bytes; they raise `Stalled` once a limit is broken.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.started = time.monotonic()
        self._advanced_at = self.started  # the last time the download advanced by min_progress (for the budget)
        self._mark_time = self.started  # start of the current progress window ...
        self._mark_bytes = 0  # ... and the bytes received since then
        self._wait_ends_window = False  # the last wait_limit() was cut short by the window or the budget

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def idle(self) -> float:
        """Seconds since the download last advanced by min_progress bytes (or since it began)."""
        return time.monotonic() - self._advanced_at

    def budget_left(self) -> float:
        return self.policy.retry_budget - self.idle

    def attempt(self) -> None:
        """A new request starts: a fresh progress window (the budget clock keeps running)."""
        self._mark_time, self._mark_bytes = time.monotonic(), 0

    def _deadline(self) -> float:
        return min(self._mark_time + self.policy.stall_window, self._advanced_at + self.policy.retry_budget)

    def wait_limit(self) -> float:
        """Seconds the next blocking call may wait: the read timeout, cut short by the window or the budget."""
        left = self._deadline() - time.monotonic()
        if left <= 0:
            raise self.stalled()
        self._wait_ends_window = left < self.policy.timeout
        return min(self.policy.timeout, left)

    def timed_out(self) -> Stalled:
        """The blocking call given `wait_limit()` seconds got no byte in time."""
        if self._wait_ends_window:  # the socket timer may fire a hair before the deadline it was set to
            return self.stalled(at_deadline=True)
        return Stalled(f"no data for {seconds(self.policy.timeout)} (EDGEZOO_FETCH_TIMEOUT)")

    def advanced(self, received: int) -> None:
        """`received` more bytes arrived (counted, not the file offset: a restart from byte 0 is progress too)."""
        now = time.monotonic()
        self._mark_bytes += received
        if self._mark_bytes >= self.policy.min_progress:
            self._mark_time, self._mark_bytes = now, 0
            self._advanced_at = now
        elif now >= self._deadline():
            raise self.stalled()

    def stalled(self, *, at_deadline: bool = False) -> Stalled:
        """Why the current attempt is given up on, once the window or the budget is used up."""
        now, p = time.monotonic(), self.policy
        if at_deadline:
            now = max(now, self._deadline())
        text = f"stalled: {self._mark_bytes:,} bytes in {seconds(now - self._mark_time)}"
        if now < self._advanced_at + p.retry_budget:  # the window ended this try, not the budget
            text += (f", less than the {p.min_progress:,} required per {seconds(p.stall_window)} "
                     "(EDGEZOO_FETCH_STALL_WINDOW, EDGEZOO_FETCH_MIN_PROGRESS)")
        return Stalled(text)

assert set(SETTINGS) == {f.name for f in fields(RetryPolicy)}, "every RetryPolicy field needs a range"
