"""Clients that leave mid-body: no exception escapes the app (uvicorn would log
"Exception in ASGI application" with a traceback), and the request log does
not call it a server error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Message

from mockserver import FalMock, create_app
from tests.conftest import AUTH, DEV


def _call_and_leave(
    mock: FalMock, method: str, path: str, headers: dict[str, str]
) -> list[Message]:
    """Run one request whose client sends half a body and disconnects."""
    app = create_app(mock)
    incoming: list[Message] = [
        {"type": "http.request", "body": b'{"prompt": "a c', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
            *[(k.lower().encode(), v.encode()) for k, v in headers.items()],
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))  # an escaping exception fails the test
    return sent


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/{DEV}"),
        ("POST", f"/_run/{DEV}"),
        ("POST", "/_mock/outcomes"),
        ("POST", "/_mock/clock/advance"),
        ("POST", "/_mock/faults"),
    ],
)
def test_a_client_leaving_mid_body_is_not_a_server_error(
    mock: FalMock, method: str, path: str
) -> None:
    sent = _call_and_leave(mock, method, path, AUTH)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [499]
    assert all(r.status_code != 500 for r in mock.requests)
    assert mock.outcomes.take(DEV).kind == "success"  # nothing half-applied
    assert len(mock.engine) == 0


def test_the_request_log_says_the_client_left(mock: FalMock) -> None:
    _call_and_leave(mock, "POST", f"/{DEV}", AUTH)
    [entry] = mock.requests
    assert entry.action == "submit" and entry.status_code == 499


def test_an_upload_left_mid_body(mock: FalMock) -> None:
    token = mock.uploads.issue_token("tenant")["token"]
    sent = _call_and_leave(mock, "POST", "/files/upload", {"Authorization": f"Bearer {token}"})
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [499]
