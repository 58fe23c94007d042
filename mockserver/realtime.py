"""Realtime: ``POST /tokens/`` and the ``/{endpoint_id}/realtime`` WebSocket.

What fal-client's ``realtime``/``ws_connect`` and @fal-ai/client's
``fal.realtime.connect`` speak. A token is asked for with ``{"allowed_apps":
[alias], "token_expiration": seconds}`` and answered as a bare JSON string;
the socket is opened at ``wss://fal.run/{endpoint_id}/realtime?fal_jwt_token=…``
(or with ``Authorization`` on the handshake). Each binary frame is one msgpack
input; the answer is the model's output as a msgpack binary frame, run at
once like ``fal.run``. Refusals and failures are a text frame
``{"type": "x-fal-error", "error", "reason"}`` (the clients raise it); a
refused connection is then closed with code 1008.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgpack  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from mockserver.endpoints import EndpointId, InvalidEndpointId
from mockserver.errors import MockError
from mockserver.http import (
    HttpError,
    error_response,
    header_map,
    http_error,
    json_response,
    read_json_body,
    validation_error,
)
from mockserver.mock import FalMock
from mockserver.tokens import DEFAULT_EXPIRATION, MAX_EXPIRATION, TokenRefused

SUFFIX = "/realtime"
_RUN_PREFIX = "/_run"
_POLICY_VIOLATION = 1008
_MAX_MESSAGE_BYTES = 10 * 1024 * 1024


def routes() -> list[BaseRoute]:
    """The token route and the realtime WebSocket (any path ending in /realtime)."""
    return [
        Route("/tokens/", _issue_token, methods=["POST"]),
        Route("/tokens", _issue_token, methods=["POST"]),
        WebSocketRoute("/{path:path}", _realtime),
    ]


def _mock(scope_owner: Request | WebSocket) -> FalMock:
    mock: FalMock = scope_owner.app.state.mock
    return mock


async def _issue_token(request: Request) -> Response:
    """``{"allowed_apps": [alias], "token_expiration": seconds}`` → the token, a JSON string."""
    mock = _mock(request)
    try:
        tenant = mock.authenticate(header_map(request).get("authorization"))
        _, body = await read_json_body(request, 64 * 1024)
        if not isinstance(body, dict):
            raise validation_error(["body"], "Input should be a valid dictionary", "dict_type")
        apps = body.get("allowed_apps")
        if (
            not isinstance(apps, list)
            or not apps
            or not all(isinstance(a, str) and a for a in apps)
        ):
            raise validation_error(
                ["body", "allowed_apps"],
                "Input should be a non-empty list of app names",
                "list_type",
            )
        expiration = body.get("token_expiration", DEFAULT_EXPIRATION)
        if (
            not isinstance(expiration, int | float)
            or isinstance(expiration, bool)
            or not 0 < expiration <= MAX_EXPIRATION
        ):
            raise validation_error(
                ["body", "token_expiration"],
                f"Input should be a number of seconds from 1 to {MAX_EXPIRATION}",
                "less_than_equal",
            )
    except (HttpError, MockError) as error:
        return error_response(error)
    return json_response(201, mock.tokens.issue(tenant, apps, float(expiration)))


def token_tenant(mock: FalMock, token: str, endpoint_id: str) -> str:
    """The tenant a realtime token admits to `endpoint_id`'s app, or a 401 `HttpError`."""
    try:
        return mock.tokens.check(token, EndpointId.parse(endpoint_id).alias)
    except TokenRefused as refused:
        raise HttpError(401, {"detail": f"Invalid fal_jwt_token: {refused}"}) from None


async def _realtime(websocket: WebSocket) -> None:
    mock = _mock(websocket)
    await websocket.accept()
    try:
        endpoint_id, tenant = _admit(websocket, mock)
        model = mock.model_for(endpoint_id)
    except (HttpError, MockError) as exc:
        error = http_error(exc)
        await _send_error(
            websocket,
            "UNAUTHORIZED" if error.status_code == 401 else "NOT_FOUND",
            error.body.get("detail"),
        )
        await websocket.close(_POLICY_VIOLATION)
        return
    base = _public_base(websocket, mock)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                payload = _decode(message)
            except _InvalidMessage as exc:
                await _send_error(websocket, "INVALID_MESSAGE", str(exc))
                continue
            kind = "VALIDATION_ERROR"  # refused before running...
            try:
                job, _ = mock.submit(model, tenant, payload, base_url=base, sync=True)
                kind = "APP_ERROR"  # ...or failed while running
                _, output = mock.result(job)
            except (HttpError, MockError) as exc:
                error = http_error(exc)
                await _send_error(
                    websocket, kind, error.body.get("detail"), status=error.status_code
                )
                continue
            await websocket.send_bytes(msgpack.packb(json.loads(output), use_bin_type=True))
    except WebSocketDisconnect:
        return


def _admit(websocket: WebSocket, mock: FalMock) -> tuple[str, str]:
    """(endpoint id, tenant) of a connection; `HttpError` 404/401 when refused."""
    path = "/" + websocket.path_params["path"].strip("/")
    path = path.removeprefix(_RUN_PREFIX)
    if not path.endswith(SUFFIX):
        raise HttpError(
            404, {"detail": f"No realtime endpoint at {path!r}: use /{{endpoint_id}}/realtime"}
        )
    try:
        endpoint_id = str(EndpointId.parse(path.removesuffix(SUFFIX)))
    except InvalidEndpointId as exc:
        raise HttpError(404, {"detail": f"Not found: {exc}"}) from None
    token = websocket.query_params.get("fal_jwt_token")
    if token:
        return endpoint_id, token_tenant(mock, token, endpoint_id)
    authorization = websocket.headers.get("authorization")
    return endpoint_id, mock.authenticate(authorization)


class _InvalidMessage(ValueError):
    """A frame that holds no input: too large, not msgpack or JSON, not a map."""


def _decode(message: Mapping[str, Any]) -> Any:
    raw: bytes | None = message.get("bytes")
    if raw is not None:
        if len(raw) > _MAX_MESSAGE_BYTES:
            raise _InvalidMessage("message too large")
        try:
            payload = msgpack.unpackb(raw, raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise _InvalidMessage(f"not msgpack: {exc}") from None
    else:
        try:
            payload = json.loads(message.get("text") or "")
        except json.JSONDecodeError:
            raise _InvalidMessage("a text frame must hold a JSON object") from None
    if not isinstance(payload, dict):
        raise _InvalidMessage("an input must be a map (a JSON object)")
    return payload


async def _send_error(
    websocket: WebSocket, error: str, reason: Any, *, status: int | None = None
) -> None:
    frame: dict[str, Any] = {"type": "x-fal-error", "error": error, "reason": _reason(reason)}
    if status is not None:
        frame["status_code"] = status
    await websocket.send_text(json.dumps(frame, separators=(",", ":")))


def _reason(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        entry = detail[0]
        return f"{'.'.join(str(x) for x in entry.get('loc', []))}: {entry.get('msg', '')}"
    return "request failed"


def _public_base(websocket: WebSocket, mock: FalMock) -> str:
    if mock.config.public_url:
        return mock.config.public_url.rstrip("/")
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    return f"{scheme}://{websocket.headers.get('host', 'localhost')}"
