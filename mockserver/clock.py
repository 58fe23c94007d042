"""Clocks: everything time-based in the mock reads exactly one of these.

`RealClock` follows wall time (the default for `mockserver serve`);
`ManualClock` only moves when a test advances it, so tests never sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

#: Where a `ManualClock` starts unless told otherwise: a fixed, readable instant
#: so that timestamps in logs and recordings are reproducible.
DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


class Clock(Protocol):
    """A source of time in seconds since the Unix epoch."""

    @property
    def manual(self) -> bool:
        """True when time only moves by `advance` (waiters must not time out on it)."""
        ...

    def now(self) -> float:
        """The current time in seconds since the epoch."""
        ...

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever the clock jumps (never for a real clock)."""
        ...


class RealClock:
    """Wall-clock time."""

    manual = False

    def now(self) -> float:
        """The current wall-clock time."""
        return time.time()

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Real time moves continuously; nobody is told about it."""

    def __repr__(self) -> str:
        return "RealClock()"


class ManualClock:
    """A clock that stands still until `advance` or `set` moves it."""

    manual = True

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[], None]] = []

    def now(self) -> float:
        """The clock's current reading."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by `seconds` (>= 0) and return the new reading."""
        if not seconds >= 0:  # also rejects NaN
            raise ValueError(f"a clock only moves forward: got {seconds!r} seconds")
        with self._lock:
            self._now += float(seconds)
            now = self._now
        self._notify()
        return now

    def set(self, timestamp: float) -> None:
        """Jump to `timestamp`, which must not be earlier than the current reading."""
        self.advance(timestamp - self._now)

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call `callback` after every jump."""
        self._subscribers.append(callback)

    def _notify(self) -> None:
        for callback in list(self._subscribers):
            callback()

    def __repr__(self) -> str:
        return f"ManualClock(now={iso_timestamp(self._now)!r})"


def iso_timestamp(seconds: float) -> str:
    """ISO-8601 UTC with microseconds, as fal writes log timestamps."""
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")
