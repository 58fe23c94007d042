"""A thread-safe "something changed" signal that asyncio code can await.

The engine may be driven from the server's event loop (HTTP) or from a test's
thread (the Python control API while uvicorn runs in another thread), so a
plain `asyncio.Event` is not enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Notifier:
    """Wakes every waiter, in any event loop, each time `notify` is called."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def notify(self) -> None:
        """Wake all current waiters (safe from any thread)."""
        with self._lock:
            waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # the loop may be closed by now
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, timeout: float | None) -> bool:
        """Wait for the next `notify`; False when `timeout` seconds passed first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard(entry)
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
