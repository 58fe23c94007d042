"""Time for the checker: real against a live server, a manual clock in tests.

The checker never calls `asyncio.sleep` directly: it waits through a pacer.
Against a live server that is real time; against the in-process mock on a
`ManualClock`, waiting *moves the clock*, so tests run scenarios that take
minutes of simulated time in milliseconds and never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Protocol, TypeVar

from mockserver.clock import ManualClock

T = TypeVar("T")

# Longest single wait inside `within`: how often a deadline is looked at.
_TICK = 0.25
# Event-loop turns a manual pacer lets pass before it moves the clock: enough
# for an in-process request to finish when nothing is waiting on time.
_TURNS = 50


class Deadline(Exception):
    """An operation did not finish within its time (pacer time)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} s")
        self.seconds = seconds


class Pacer(Protocol):
    """Where the checker's time comes from."""

    def now(self) -> float:
        """Seconds on this pacer's clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Let `seconds` pass."""
        ...

    async def wait(self, task: asyncio.Future[T], seconds: float) -> None:
        """Wait until `task` is done or `seconds` have passed, whichever is first."""
        ...


class RealPacer:
    """Wall-clock time (the event loop's monotonic clock)."""

    def now(self) -> float:
        """The event loop's time."""
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep`."""
        await asyncio.sleep(seconds)

    async def wait(self, task: asyncio.Future[T], seconds: float) -> None:
        """`asyncio.wait` with a timeout."""
        await asyncio.wait({task}, timeout=seconds)


class ManualPacer:
    """Simulated time: waiting advances a `ManualClock` (used by the tests)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def now(self) -> float:
        """The manual clock's time."""
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        """Advance the clock, then let other tasks run."""
        self.clock.advance(seconds)
        for _ in range(_TURNS):
            await asyncio.sleep(0)

    async def wait(self, task: asyncio.Future[T], seconds: float) -> None:
        """Let the loop turn; if `task` is still waiting, it waits on time: advance."""
        for _ in range(_TURNS):
            if task.done():
                return
            await asyncio.sleep(0)
        self.clock.advance(seconds)


async def within(pacer: Pacer, seconds: float, awaitable: Awaitable[T]) -> T:
    """The result of `awaitable`, or `Deadline` after `seconds` of pacer time."""
    task = asyncio.ensure_future(awaitable)
    deadline = pacer.now() + seconds
    try:
        while not task.done():
            remaining = deadline - pacer.now()
            if remaining <= 0:
                raise Deadline(seconds)
            await pacer.wait(task, min(remaining, _TICK))
        return task.result()
    finally:
        if not task.done():  # deadline, or we were cancelled: do not leak the task
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
