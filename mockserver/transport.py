"""httpx transports that route requests into a mock app in process.

They drive the ASGI app themselves (the request in one message, the answer
collected whole) instead of wrapping httpx's `ASGITransport`, which a test
suite pays for on every request: it looks for trio by importing sniffio
(a failed import each time where sniffio is not installed), and the answer is
copied through two more `Response` objects. They also notice a response cut
short (what the mock's "drop" fault sends) and raise
`httpx.RemoteProtocolError` for it, as a real connection would.
`SyncAppTransport` serves sync clients by running the app on an event loop.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import httpx

#: An ASGI application (Starlette's, or any other).
ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]
RawHeaders = Sequence[tuple[bytes, bytes]]
_CLIENT = ("127.0.0.1", 123)  # the peer address the app sees (httpx's ASGITransport's)


async def exchange(
    app: ASGIApp, request: httpx.Request, *, url: httpx.URL | None = None, host: str | None = None
) -> httpx.Response:
    """`request` answered by `app` (sent to `url` if given, with `host` as its
    Host header if given); the body is read in full.

    Raises `httpx.RemoteProtocolError` for an answer shorter than its
    Content-Length or never finished, as a dropped connection does; an
    exception in the app propagates.
    """
    target = request.url if url is None else url
    headers = [(k.lower(), v) for k, v in request.headers.raw]
    if host is not None:
        headers = [(k, v) for k, v in headers if k != b"host"]
        headers.insert(0, (b"host", host.encode("ascii")))
    body = request.read()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "headers": headers,
        "scheme": target.scheme,
        "path": target.path,
        "raw_path": target.raw_path.split(b"?", 1)[0],
        "query_string": target.query,
        "server": (target.host, target.port),
        "client": _CLIENT,
        "root_path": "",
    }
    status = 0
    response_headers: RawHeaders = []
    parts: list[bytes] = []
    sent = False
    # Created only for an app that listens for the client leaving (a
    # streaming answer does), and only then on the running loop.
    finished: Any = None  # an asyncio (or anyio) Event
    complete = False

    async def receive() -> dict[str, Any]:
        nonlocal sent, finished
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if not complete:
            finished = finished or _event()
            await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, response_headers, complete
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers = message.get("headers", [])
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            if chunk and request.method != "HEAD":
                parts.append(chunk)
            if not message.get("more_body", False):
                complete = True
                if finished is not None:
                    finished.set()

    await app(scope, receive, send)
    content = b"".join(parts)
    if not complete or not status:
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending a complete response", request=request
        )
    response = httpx.Response(status, headers=response_headers, content=content, request=request)
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and len(content) < int(declared):
        raise httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body"
            f" (received {len(content)} bytes, expected {declared})",
            request=request,
        )
    return response


def _event() -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio): anyio's event works on either
        import anyio

        return anyio.Event()
    return asyncio.Event()


class AppTransport(httpx.AsyncBaseTransport):
    """An async transport into an ASGI app that behaves like a network for drops."""

    def __init__(self, app: Any) -> None:
        self.app: ASGIApp = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` to the app; the body is read in full."""
        await request.aread()
        return await exchange(self.app, request)

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
        self.app: ASGIApp = app
        self._thread: threading.Thread | None = None  # the private loop's, if any
        if shared:
            self._loop = _shared_loop()
        else:
            self._loop, self._thread = _new_loop_thread()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` to the app and wait for the whole response."""
        return self.forward(request)

    def forward(
        self, request: httpx.Request, *, url: httpx.URL | None = None, host: str | None = None
    ) -> httpx.Response:
        """`request` answered by the app, sent to `url` and with `host` as its
        Host header when given (what a test's interceptor rewrites)."""
        request.read()
        call = exchange(self.app, request, url=url, host=host)
        if self._thread is None and not _loop_running():
            # Shared mode, a caller with no loop of its own running: run the app
            # right here on this thread's loop, no hop to another thread (which a
            # busy machine makes the slowest part of an in-process request).
            return _caller_loop().run_until_complete(call)
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

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
