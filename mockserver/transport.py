"""httpx transports that route requests into a mock app in process.

httpx's own `ASGITransport` does not notice a response cut short (what the
mock's "drop" fault sends); these raise `httpx.RemoteProtocolError` for it,
as a real connection would. `SyncMockTransport` serves sync clients by
running the app on an event loop in a background thread.
"""

from __future__ import annotations

import asyncio
import threading
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


class MockTransport(httpx.AsyncBaseTransport):
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


class SyncMockTransport(httpx.BaseTransport):
    """A sync transport into an ASGI app, run on a private event-loop thread."""

    def __init__(self, app: Any) -> None:
        self._async = MockTransport(app)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="mock-app")
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` to the app and wait for the whole response."""
        copy = httpx.Request(
            request.method, request.url, headers=request.headers, content=request.read()
        )
        future = asyncio.run_coroutine_threadsafe(
            self._async.handle_async_request(copy), self._loop
        )
        response = future.result()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=response.content,
            request=request,
        )

    def close(self) -> None:
        """Stop the loop thread."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()
