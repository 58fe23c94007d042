"""The HTTP layer's helpers, shared by the protocol and control routes.

HTTP concepts live here and nowhere below: `HttpError` (an answer to send),
FastAPI-style 422s, and `http_error`, the one place that maps the service's
typed errors (`mockserver.errors`) to status codes and bodies.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mockserver.encoding import compact_json
from mockserver.errors import (
    InvalidInput,
    JobFailed,
    MockError,
    RequestNotFound,
    ResultNotReady,
    Unauthenticated,
    UnknownEndpoint,
)
from mockserver.queue import QueueFull

__all__ = [
    "HttpError",
    "compact_json",
    "error_response",
    "http_error",
    "json_response",
    "validation_error",
]

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(:\d{1,5})?$")
_JSON_TYPES = re.compile(r"^application/([a-z0-9.+-]*\+)?json$")


class HttpError(Exception):
    """An error answer to send as is: status code, JSON body, extra headers."""

    def __init__(
        self, status_code: int, body: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status_code, body)
        self.status_code = status_code
        self.body = body
        self.headers = dict(headers or {})


def validation_error(loc: list[str | int], msg: str, type: str, **extra: Any) -> HttpError:
    """A 422 with FastAPI's `detail` list holding one entry."""
    return HttpError(422, {"detail": [{"loc": loc, "msg": msg, "type": type, **extra}]})


#: The status code of each service error whose body is just its message.
_STATUS: dict[type[MockError], int] = {
    Unauthenticated: 401,
    UnknownEndpoint: 404,
    RequestNotFound: 404,
    ResultNotReady: 400,
}


def http_error(error: MockError | HttpError) -> HttpError:
    """The answer to a service error (an `HttpError` is already one)."""
    if isinstance(error, HttpError):
        return error
    if isinstance(error, InvalidInput):
        return HttpError(422, {"detail": error.issues})
    if isinstance(error, JobFailed):
        failure = error.failure
        headers: dict[str, str] = {}
        if failure.error_type is not None:
            headers["X-Fal-Error-Type"] = failure.error_type
        if failure.timeout_type is not None:
            headers["X-Fal-Request-Timeout-Type"] = failure.timeout_type
        return HttpError(failure.status_code, failure.body(), headers)
    if isinstance(error, QueueFull):
        return HttpError(429, {"detail": str(error)}, {"Retry-After": "1"})
    for kind in type(error).__mro__:
        status = _STATUS.get(kind)
        if status is not None:
            return HttpError(status, {"detail": str(error)})
    # A service error without a mapping is a bug of this table, not the client's.
    return HttpError(500, {"detail": "Internal server error"})


class JSONBytes(Response):
    """A JSON body that is already encoded.

    Builds its raw headers directly: Starlette's generic header handling was a
    measurable share of a status poll (see benchmarks/RESULTS.md).
    """

    media_type = "application/json"

    def __init__(
        self, body: bytes, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        raw = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        if headers:
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.raw_headers = raw


def json_response(
    status_code: int, body: Any, headers: Mapping[str, str] | None = None
) -> Response:
    """A compact JSON response."""
    return JSONBytes(compact_json(body), status_code, headers)


def header_map(request: Request) -> dict[str, str]:
    """The request's headers as a plain dict with lower-case names, built once.

    For a repeated header the first value wins, as with Starlette's
    `Headers.get`. Cached in the scope: the hot path reads several headers.
    """
    scope = request.scope
    cached: dict[str, str] | None = scope.get("mockserver.headers")
    if cached is None:
        cached = {}
        for name, value in scope["headers"]:
            cached.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        scope["mockserver.headers"] = cached
    return cached


def error_response(error: HttpError | MockError) -> Response:
    """The JSON answer for an `HttpError` or a service error."""
    answer = http_error(error)
    return json_response(answer.status_code, answer.body, answer.headers)


def public_base(request: Request, configured: str | None) -> str:
    """The origin clients reach this server on: configured, forwarded, or the request's."""
    if configured:
        return configured.rstrip("/")
    headers = header_map(request)
    proto = headers.get("x-forwarded-proto") or request.scope.get("scheme", "http")
    host = headers.get("x-forwarded-host") or headers.get("host") or ""
    return _origin(proto, host)


@lru_cache(maxsize=256)
def _origin(proto: str, host: str) -> str:
    # Cached: a server sees a handful of distinct (proto, host) pairs, and this
    # runs on every status poll. Invalid pairs raise, and are not cached.
    proto = proto.split(",")[0].strip().lower()
    if proto not in ("http", "https"):
        raise HttpError(400, {"detail": "Invalid X-Forwarded-Proto header: use http or https"})
    host = host.split(",")[0].strip()
    if not _HOST.match(host):
        raise HttpError(400, {"detail": "Invalid Host or X-Forwarded-Host header"})
    return f"{proto}://{host}"


@lru_cache(maxsize=256)
def hostname(host_header: str) -> str:
    """The name part of a Host header, lower-cased (without the port)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


_TRUE_FLAGS = ("1", "true", "yes", "on")
_FALSE_FLAGS = ("0", "false", "no", "off", "")


def flag_pattern() -> str:
    """The values `parse_flag` takes, as a pattern the OpenAPI document states:
    any case, surrounding whitespace ignored (ECMA-262 and Python alike)."""
    words = [
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)
        for word in _TRUE_FLAGS + _FALSE_FLAGS
        if word
    ]
    return rf"^\s*(?:{'|'.join(words)})?\s*(?![\s\S])"


def parse_flag(value: str | None, name: str) -> bool:
    """A boolean query parameter as clients send it: 1/0, true/false, or absent."""
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in _TRUE_FLAGS:
        return True
    if lowered in _FALSE_FLAGS:
        return False
    raise validation_error(
        ["query", name], "Input should be a valid boolean (1/0 or true/false)", "bool_parsing"
    )


async def read_json_body(
    request: Request, limit: int, *, strict_type: bool = True
) -> tuple[bytes, Any]:
    """The raw body and its parsed JSON; 413/415/422 as FastAPI would answer.

    With `strict_type`, a Content-Type that is present and not JSON gets 415
    (an absent one is read as JSON, as fal does for bare curl calls).
    """
    content_type = header_map(request).get("content-type", "").split(";")[0].strip().lower()
    if strict_type and content_type and not _JSON_TYPES.match(content_type):
        raise HttpError(
            415,
            {"detail": f"Unsupported Content-Type {content_type!r}: send application/json"},
        )
    raw = await read_raw_body(request, limit)
    if not raw.strip():
        raise validation_error(["body"], "Field required", "missing")
    try:
        return raw, json.loads(
            raw, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except _UnrepresentableNumber as exc:
        raise validation_error(
            ["body"], "JSON decode error", "json_invalid", ctx={"error": str(exc)}
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        position = getattr(exc, "pos", 0)
        reason = getattr(exc, "msg", None) or str(exc)
        raise validation_error(
            ["body", position], "JSON decode error", "json_invalid", ctx={"error": reason}
        ) from None


#: Longer integers are refused while parsing (Python's own int-string limit is
#: 4300 digits and raises a bare ValueError past it).
MAX_INTEGER_DIGITS = 1000


class _UnrepresentableNumber(Exception):
    """A JSON number the mock cannot hold or write back: too long, infinite, NaN."""


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _UnrepresentableNumber(
            f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INTEGER_DIGITS})"
        )
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e309: past the largest double
        raise _UnrepresentableNumber(f"the number {text[:40]} is out of range")
    return value


def _json_constant(name: str) -> float:
    # NaN and Infinity are not JSON; Python's parser accepts them by default.
    raise _UnrepresentableNumber(f"{name} is not a JSON number")


async def read_raw_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) more than `limit` bytes, declared or streamed."""
    declared = header_map(request).get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HttpError(400, {"detail": "Invalid Content-Length header"})
        if int(declared) > limit:
            raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> HttpError:
    return HttpError(413, {"detail": f"Request body too large: {size} bytes (limit {limit})"})


class DroppedConnection(Response):
    """Starts a response, sends part of it and stops: the client sees the
    connection close mid-body, as with a crashed proxy."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Drain the request first: closing a socket with unread input makes the
        # kernel send a reset, and the client would see that instead.
        message = await receive()
        while message.get("type") == "http.request" and message.get("more_body"):
            message = await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")],
            }
        )
        # The body ends short of its Content-Length. A real server (uvicorn)
        # refuses to finish such a response and closes the connection, which is
        # the point; in-process transports see a truncated body.
        with contextlib.suppress(RuntimeError):
            await send({"type": "http.response.body", "body": b'{"status":', "more_body": False})
