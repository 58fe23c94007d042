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

from mockserver.jsonfields import InvalidControlInput

#: Where a `ManualClock` starts unless told otherwise: a fixed, readable instant
#: so that timestamps in logs and recordings are reproducible.
DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
#: The largest single step of `ManualClock.advance` (about 31.7 years).
MAX_ADVANCE_SECONDS = 1e9
#: A manual clock never reads later than this: every timestamp the mock writes
#: (expiry an hour on, webhook retries days on) must stay a valid date.
LATEST_READING = datetime(9000, 1, 1, tzinfo=UTC).timestamp()


class NotManualClock(Exception):
    """Asked to move a clock that follows wall time (the control API answers 409)."""


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
        if not 0 <= start <= LATEST_READING:  # also refuses NaN and infinities
            raise InvalidControlInput(f"a manual clock starts between 1970 and 9000, not {start!r}")
        self._now = float(start)
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[], None]] = []

    def now(self) -> float:
        """The clock's current reading."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by `seconds` and return the new reading.

        `seconds` is finite, from 0 to `MAX_ADVANCE_SECONDS`, and the reading
        stays before `LATEST_READING`; otherwise `InvalidControlInput` is raised
        and the clock has not moved.
        """
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 <= seconds <= MAX_ADVANCE_SECONDS  # also rejects NaN and infinities
        ):
            raise InvalidControlInput(
                f"a clock moves forward by a number of seconds from 0 to"
                f" {MAX_ADVANCE_SECONDS:.0f}, not {seconds!r}"
            )
        return self._move(lambda now: now + float(seconds))

    def set(self, timestamp: float) -> None:
        """Jump to `timestamp`: not earlier than the current reading, before `LATEST_READING`."""
        if (
            isinstance(timestamp, bool)
            or not isinstance(timestamp, int | float)
            or not 0 <= timestamp <= LATEST_READING  # before float(): a huge int overflows it
        ):
            raise InvalidControlInput(
                f"a clock is set to a timestamp up to the year 9000, not {timestamp!r}"
            )
        self._move(lambda now: float(timestamp))

    def _move(self, to: Callable[[float], float]) -> float:
        with self._lock:
            now = to(self._now)
            if not self._now <= now <= LATEST_READING:
                raise InvalidControlInput(
                    f"the clock would read {now!r}: it only moves forward, up to the year 9000"
                )
            self._now = now
        self._notify()
        return now

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
