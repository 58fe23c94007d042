"""Live checks of realtime: the token endpoint and the msgpack WebSocket round trip.

What fal-client's ``realtime``/``ws_connect`` and @fal-ai/client's
``fal.realtime.connect`` do: ``POST {rest}/tokens/`` with ``{"allowed_apps":
[alias], "token_expiration": 120}`` for a short-lived token, then a WebSocket
to ``{run host}/{endpoint_id}/realtime?fal_jwt_token=…`` that answers each
msgpack input frame with the model's output.

Judged by what breaks a client: a target that does not offer the surface
(404/405/501) gets a note, "not offered"; an answer a client cannot use
fails; a difference no client trips over (an output that is not the model's
queue output) is a note.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlencode, urlsplit

import msgpack  # type: ignore[import-untyped]
from jsonschema import Draft202012Validator

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.pacing import Deadline, within
from mockserver.check.results import Verdict
from mockserver.client.protocol import ClientSettings
from mockserver.endpoints import EndpointId

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mockserver.check.unit import Unit as _Unit

_NOT_OFFERED = frozenset({404, 405, 501})
# What both clients ask for (their TOKEN_EXPIRATION_SECONDS).
_TOKEN_EXPIRATION = 120
_NORMAL_CLOSURE = 1000


class HandshakeRefused(Exception):
    """The server answered the WebSocket handshake with an HTTP status, not 101."""

    def __init__(self, status_code: int, body: bytes = b"") -> None:
        super().__init__(f"the handshake was answered with HTTP {status_code}")
        self.status_code = status_code
        self.body = body


class SocketClosed(Exception):
    """The server closed the socket (`code` None: the connection dropped)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"closed with code {code}" + (f" ({reason})" if reason else ""))
        self.code = code
        self.reason = reason


class RealtimeSocket(Protocol):
    """An open WebSocket, as the checks use it."""

    async def send(self, message: bytes) -> None:
        """Send one binary frame."""

    async def receive(self) -> bytes | str:
        """The next frame; `SocketClosed` when the server closed the socket."""


# Opens a WebSocket at a ws:// or wss:// URL; `HandshakeRefused` when it is refused.
WebSocketOpener = Callable[[str], AbstractAsyncContextManager[RealtimeSocket]]


class _Connection:
    """`RealtimeSocket` over a `websockets` client connection."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def send(self, message: bytes) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._connection.send(message)
        except ConnectionClosed as closed:
            raise _closed(closed) from None

    async def receive(self) -> bytes | str:
        from websockets.exceptions import ConnectionClosed

        try:
            frame: bytes | str = await self._connection.recv()
        except ConnectionClosed as closed:
            raise _closed(closed) from None
        return frame


def _closed(closed: Any) -> SocketClosed:
    received = closed.rcvd
    return SocketClosed(received.code, received.reason) if received else SocketClosed(None)


@asynccontextmanager
async def open_websocket(url: str) -> AsyncIterator[RealtimeSocket]:
    """A WebSocket to `url` over the network (the `websockets` library, which
    uvicorn's standard extra brings); frames up to 10 MiB, as the mock takes."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    try:
        connection = await connect(url, max_size=10 * 1024 * 1024, open_timeout=None)
    except InvalidStatus as refused:
        answer = refused.response
        raise HandshakeRefused(answer.status_code, bytes(answer.body or b"")) from None
    try:
        yield _Connection(connection)
    finally:
        await connection.close(_NORMAL_CLOSURE)


def app_websockets(app: Any) -> WebSocketOpener:
    """Open WebSockets into an ASGI app in process (what `AppTransport` is to HTTP),
    so an in-process run checks realtime too."""

    @asynccontextmanager
    async def open_in_process(url: str) -> AsyncIterator[RealtimeSocket]:
        parts = urlsplit(url)
        to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": parts.scheme,
            "path": unquote(parts.path),
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [(b"host", parts.netloc.encode())],
            "client": ("127.0.0.1", 0),
            "server": (parts.hostname or "localhost", parts.port or 80),
            "subprotocols": [],
            "extensions": {"websocket.http.response": {}},
        }
        await to_app.put({"type": "websocket.connect"})
        task = asyncio.ensure_future(app(scope, to_app.get, from_app.put))
        socket = _AppSocket(to_app, from_app, task)
        try:
            await socket.handshake()
            yield socket
        finally:
            await to_app.put({"type": "websocket.disconnect", "code": _NORMAL_CLOSURE})
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    return open_in_process


class _AppSocket:
    """`RealtimeSocket` over the ASGI messages of an app run in process."""

    def __init__(
        self,
        to_app: asyncio.Queue[dict[str, Any]],
        from_app: asyncio.Queue[dict[str, Any]],
        task: asyncio.Future[Any],
    ) -> None:
        self._to_app = to_app
        self._from_app = from_app
        self._task = task

    async def _next(self) -> dict[str, Any] | None:
        """The app's next message; None when the app returned without one."""
        getter = asyncio.ensure_future(self._from_app.get())
        await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        return None

    async def handshake(self) -> None:
        """Wait for the app to accept; `HandshakeRefused` when it answers otherwise."""
        message = await self._next()
        if message is not None and message["type"] == "websocket.accept":
            return
        if message is not None and message["type"] == "websocket.http.response.start":
            body = b""
            while (part := await self._next()) and part["type"] == "websocket.http.response.body":
                body += part.get("body", b"")
                if not part.get("more_body"):
                    break
            raise HandshakeRefused(int(message["status"]), body)
        raise HandshakeRefused(403)  # closed before accepting: what servers answer then

    async def send(self, message: bytes) -> None:
        if self._task.done():
            raise SocketClosed(None)
        await self._to_app.put({"type": "websocket.receive", "bytes": message})

    async def receive(self) -> bytes | str:
        message = await self._next()
        if message is None:
            raise SocketClosed(None)
        if message["type"] == "websocket.close":
            raise SocketClosed(message.get("code", _NORMAL_CLOSURE), message.get("reason") or "")
        if message.get("bytes") is not None:
            return bytes(message["bytes"])
        return str(message.get("text") or "")


def socket_url(base_url: str, endpoint_id: str, token: str) -> str:
    """The realtime WebSocket URL of `endpoint_id` on the run host of `base_url`."""
    run = ClientSettings(base_url=base_url).run_base
    scheme, rest = run.split("://", 1)
    ws = "wss" if scheme == "https" else "ws"
    return f"{ws}://{rest}/{endpoint_id}/realtime?" + urlencode({"fal_jwt_token": token})


async def realtime(unit: _Unit) -> None:
    """Ask for a token, open the socket with it, send the input, judge the reply."""
    token = await _token(unit)
    if token is None:
        return
    opener = unit.checker.websockets
    if opener is None:
        reason = "needs a way to open WebSockets (Checker(websockets=...)): none was given"
        unit.add(Finding.of("realtime-roundtrip", Verdict.SKIP, reason))
        return
    url = socket_url(unit.target.base_url, unit.model.endpoint_id, token)
    # Evidence names the socket, never the token.
    record = Exchange("GET", url.split("?", 1)[0] + "?fal_jwt_token=<token>")
    unit.checker.report.submits += 1  # each input runs (and bills) the model
    try:
        reply = await within(
            unit.pacer, unit.settings.request_timeout, _round_trip(opener, url, unit.input)
        )
    except HandshakeRefused as refused:
        record.status_code, record.body = refused.status_code, refused.body
        if refused.status_code in _NOT_OFFERED:
            reason = f"the WebSocket is not offered ({record.describe()})"
            unit.add(Finding.of("realtime-offered", Verdict.NOTE, reason, record))
        else:
            reason = f"the handshake with a fresh token was refused: {record.describe()}"
            unit.add(Finding.of("realtime-roundtrip", Verdict.FAIL, reason, record))
        return
    except _Broken as broken:
        record.status_code, record.body = 101, broken.frame
        unit.add(Finding.of("realtime-roundtrip", Verdict.FAIL, str(broken), record))
        return
    except SocketClosed as closed:
        record.status_code = 101
        reason = f"the socket {closed} before an answer: the clients raise"
        unit.add(Finding.of("realtime-roundtrip", Verdict.FAIL, reason, record))
        return
    except Deadline as exc:
        record.status_code = 101
        reason = f"no answer to the input: {exc}"
        unit.add(Finding.of("realtime-roundtrip", Verdict.FAIL, reason, record))
        return
    except OSError as exc:  # refused connection, reset, TLS failure
        record.error = f"{type(exc).__name__}: {exc}"
        reason = f"the WebSocket could not be opened: {record.error}"
        unit.add(Finding.of("realtime-roundtrip", Verdict.FAIL, reason, record))
        return
    record.status_code = 101
    record.body = json.dumps(reply, separators=(",", ":"), default=repr).encode()
    unit.add(Finding.of("realtime-roundtrip", Verdict.PASS, "the input was answered", record))
    errors = list(Draft202012Validator(unit.model.output_schema).iter_errors(reply))
    if errors:
        reason = (
            f"the answer is not the model's queue output ({errors[0].message});"
            " the clients hand it over as it is"
        )
        unit.add(Finding.of("realtime-output", Verdict.NOTE, reason, record))
    else:
        reason = "the answer is the model's output"
        unit.add(Finding.of("realtime-output", Verdict.PASS, reason, record))


async def _token(unit: _Unit) -> str | None:
    """`realtime-token`: the token, judged; None when there is none to go on with."""
    url = f"{ClientSettings(base_url=unit.target.base_url).rest_base}/tokens/"
    alias = EndpointId.parse(unit.model.endpoint_id).alias
    body = {"allowed_apps": [alias], "token_expiration": _TOKEN_EXPIRATION}
    answer = await unit.call("POST", url, body=body)
    if answer.status_code in _NOT_OFFERED:
        reason = f"realtime tokens are not offered ({answer.describe()})"
        unit.add(Finding.of("realtime-offered", Verdict.NOTE, reason, answer))
        return None
    data = answer.json()
    token, verdict, reason = _judge_token(answer, data)
    # The token is a credential: the evidence shows its shape, not its value.
    shown = Exchange(answer.method, answer.url, answer.status_code, answer.headers)
    shown.body = json.dumps(_masked(data)).encode() if answer.accepted else answer.body
    unit.add(Finding.of("realtime-token", verdict, reason, shown))
    return token


def _judge_token(answer: Exchange, data: Any) -> tuple[str | None, Verdict, str]:
    """(token, verdict, reason) for the token endpoint's answer.

    fal answers the token as a bare JSON string. @fal-ai/client uses the body
    as the token unless it is an object with a `detail` (old proxies wrap it
    so); fal-client also takes `{"token": ...}`. What either client cannot
    use fails.
    """
    if not answer.accepted:
        return None, Verdict.FAIL, f"expected the token, got {answer.describe()}"
    if isinstance(data, str) and data:
        return data, Verdict.PASS, "a bare JSON string, as fal answers"
    if isinstance(data, dict) and isinstance(data.get("detail"), str) and data["detail"]:
        reason = '{"detail": token}: both clients unwrap it (fal answers a bare string)'
        return data["detail"], Verdict.NOTE, reason
    if isinstance(data, dict) and isinstance(data.get("token"), str) and data["token"]:
        reason = (
            '{"token": ...}: fal-client takes it, but @fal-ai/client uses the whole body'
            " as the token (fal answers a bare string)"
        )
        return data["token"], Verdict.FAIL, reason
    return None, Verdict.FAIL, f"no token in the answer ({answer.describe()})"


def _masked(data: Any) -> Any:
    if isinstance(data, str):
        return f"<token, {len(data)} characters>"
    if isinstance(data, dict):
        return {k: _masked(v) if k in ("token", "detail") else v for k, v in data.items()}
    return data


class _Broken(Exception):
    """A frame the clients cannot take (the message says why)."""

    def __init__(self, reason: str, frame: bytes | str) -> None:
        super().__init__(reason)
        self.frame = frame.encode() if isinstance(frame, str) else frame


async def _round_trip(opener: WebSocketOpener, url: str, payload: dict[str, Any]) -> Any:
    """Send one msgpack input; the first frame the clients hand over as a result."""
    async with opener(url) as socket:
        await socket.send(msgpack.packb(payload, use_bin_type=True))
        while True:
            frame = await socket.receive()
            decoded = _decode(frame)
            if not isinstance(decoded, dict):
                raise _Broken(f"a frame that is not a map: {decoded!r:.80}", frame)
            kind = decoded.get("type")
            if kind == "x-fal-message":
                continue  # both clients skip these meta messages
            if kind == "x-fal-error":
                detail = f"{decoded.get('error')}: {decoded.get('reason')}"
                raise _Broken(f"an x-fal-error frame ({detail}): the clients raise it", frame)
            if decoded.get("status") == "error":
                raise _Broken('a frame with "status": "error": @fal-ai/client drops it', frame)
            return decoded


def _decode(frame: bytes | str) -> Any:
    """A frame as the clients decode it: binary is msgpack, text is JSON."""
    if isinstance(frame, bytes):
        try:
            return msgpack.unpackb(frame, raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise _Broken(f"a binary frame that is not msgpack ({exc})", frame) from None
    try:
        return json.loads(frame)
    except json.JSONDecodeError:
        raise _Broken("a text frame that is not JSON: @fal-ai/client fails on it", frame) from None
