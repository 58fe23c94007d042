"""httpx transports that route requests into a mock app in process.

httpx's own `ASGITransport` does not notice a response cut short (what the
mock's "drop" fault sends); these raise `httpx.RemoteProtocolError` for it,
as a real connection would. `SyncAppTransport` serves sync clients by
running the app on an event loop in a background thread.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import httpx


def _check_complete(request: httpx.Request, response: httpx.Response, body: bytes) -> None:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and len(body) < int(declared):
        raise httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body"
            f" (received {len(body)} bytes, expected {declared})",
            request=request,
        )


class AppTransport(httpx.AsyncBaseTransport):
    """An async transport into an ASGI app that behaves like a network for drops."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` to the app; the body is read in full."""
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        _check_complete(request, response, body)
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    async def aclose(self) -> None:
        """Nothing to release."""


class SyncAppTransport(httpx.BaseTransport):
    """A sync transport into an ASGI app, run on an event-loop thread.

    By default the transport starts (and `close` stops) a private loop thread;
    `shared=True` costs nothing to open or close (what a test suite building a
    mock per test wants): the app runs on the calling thread's own loop, or,
    for a caller inside a running event loop, on one loop thread for the
    whole process.
    """

    def __init__(self, app: Any, *, shared: bool = False) -> None:
        self._async = AppTransport(app)
        self._thread: threading.Thread | None = None  # the private loop's, if any
        if shared:
            self._loop = _shared_loop()
        else:
            self._loop, self._thread = _new_loop_thread()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` to the app and wait for the whole response."""
        copy = httpx.Request(
            request.method, request.url, headers=request.headers, content=request.read()
        )
        call = self._async.handle_async_request(copy)
        if self._thread is None and not _loop_running():
            # Shared mode, a caller with no loop of its own running: run the app
            # right here on this thread's loop, no hop to another thread (which a
            # busy machine makes the slowest part of an in-process request).
            response = _caller_loop().run_until_complete(call)
        else:
            response = asyncio.run_coroutine_threadsafe(call, self._loop).result()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=response.content,
            request=request,
        )

    def close(self) -> None:
        """Stop the loop thread (a shared one keeps running for the next mock)."""
        if self._thread is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()


def _new_loop_thread() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True, name="mock-app")
    thread.start()
    return loop, thread


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_callers = threading.local()


def _caller_loop() -> asyncio.AbstractEventLoop:
    """This thread's own event loop for running the app (kept for the next request)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_callers, "loop", None)
    if loop is None or loop.is_closed():
        loop = _callers.loop = asyncio.new_event_loop()
    return loop


_shared: asyncio.AbstractEventLoop | None = None
_shared_lock = threading.Lock()


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _shared
    with _shared_lock:
        if _shared is None or _shared.is_closed():
            _shared = _new_loop_thread()[0]
        return _shared


#: Names this module had before (`MockTransport` is also httpx's, for another thing).
_RENAMED = {"MockTransport": "AppTransport", "SyncMockTransport": "SyncAppTransport"}


def __getattr__(name: str) -> Any:
    new = _RENAMED.get(name)
    if new is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"mockserver.transport.{name} is now {new} ({name} will be removed)",
        DeprecationWarning,
        stacklevel=2,
    )
    return globals()[new]
