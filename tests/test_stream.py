"""The SSE status stream, in process, driven by the manual clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mockserver import FalMock, ManualClock, create_app
from tests.conftest import AUTH, DEV, MockFactory


@pytest.fixture
async def aclient(mock: FalMock) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(mock))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=AUTH
    ) as client:
        yield client


async def _settle() -> None:
    """Let every ready task run (no time passes: this is not a sleep)."""
    for _ in range(50):
        await asyncio.sleep(0)


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def _submit(client: httpx.AsyncClient) -> str:
    response = await client.post(f"/{DEV}", json={"prompt": "x"})
    request_id: str = response.json()["request_id"]
    return request_id


@pytest.mark.anyio
async def test_one_event_per_change_new_logs_only_and_close(
    aclient: httpx.AsyncClient, clock: ManualClock
) -> None:
    request_id = await _submit(aclient)
    stream = asyncio.create_task(
        aclient.get(f"/fal-ai/flux-1/requests/{request_id}/status/stream", params={"logs": 1})
    )
    await _settle()
    for step in (1.0, 0.2, 0.4, 0.4):
        clock.advance(step)
        await _settle()
    response = await asyncio.wait_for(stream, timeout=5)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert [e["status"] for e in events] == [
        "IN_QUEUE",
        "IN_PROGRESS",
        "IN_PROGRESS",
        "IN_PROGRESS",
        "COMPLETED",
    ]
    assert [[line["message"] for line in e["logs"]] for e in events] == [
        [],
        ["Loading model weights"],
        ["Running inference"],
        ["Decoding latents"],
        ["Uploading result"],
    ]
    assert events[0]["queue_position"] == 0
    assert events[-1]["metrics"] == {"inference_time": 1.0}


@pytest.mark.anyio
async def test_stream_of_a_completed_request_is_one_event(
    aclient: httpx.AsyncClient, clock: ManualClock
) -> None:
    request_id = await _submit(aclient)
    clock.advance(10)
    response = await aclient.get(f"/fal-ai/flux-1/requests/{request_id}/status/stream/")
    events = _events(response.text)
    assert len(events) == 1 and events[0]["status"] == "COMPLETED" and events[0]["logs"] is None


@pytest.mark.anyio
async def test_stream_of_an_unknown_request_is_a_404(aclient: httpx.AsyncClient) -> None:
    response = await aclient.get(
        "/fal-ai/flux-1/requests/00000000-0000-4000-8000-000000000000/status/stream"
    )
    assert response.status_code == 404 and "detail" in response.json()


async def _chunks(app: Any, path: str) -> AsyncIterator[str]:
    """The body of a GET as the app sends it, chunk by chunk (httpx's ASGI transport
    would wait for the whole body; a stream is read while it runs)."""
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    finished = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"authorization", AUTH["Authorization"].encode())],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    task = asyncio.create_task(app(scope, receive, sent.put))
    try:
        while True:
            message = await asyncio.wait_for(sent.get(), timeout=5)
            if message["type"] == "http.response.body":
                yield message.get("body", b"").decode()
                if not message.get("more_body", False):
                    return
    finally:
        finished.set()
        await task


@pytest.mark.anyio
async def test_keep_alives_while_nothing_changes(
    make_mock: MockFactory, clock: ManualClock
) -> None:
    # Keep-alives are real-time by nature (they keep TCP proxies and the JS
    # client's 15 s idle timer happy): wait for the first one to arrive, then
    # move the mock's clock so the request completes.
    mock = make_mock(stream_keepalive=0.01)
    app = create_app(mock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers=AUTH
    ) as client:
        request_id = await _submit(client)
    text = ""
    async for chunk in _chunks(app, f"/fal-ai/flux-1/requests/{request_id}/status/stream"):
        text += chunk
        if chunk == ": keep-alive\n\n":
            clock.advance(10)
    assert ": keep-alive" in text
    assert _events(text)[-1]["status"] == "COMPLETED"


@pytest.mark.anyio
async def test_stream_ends_when_the_request_expires(
    aclient: httpx.AsyncClient, mock: FalMock
) -> None:
    request_id = await _submit(aclient)
    stream = asyncio.create_task(aclient.get(f"/fal-ai/flux-1/requests/{request_id}/status/stream"))
    await _settle()
    mock.reset()
    await _settle()
    response = await asyncio.wait_for(stream, timeout=5)
    assert "not found" in _events(response.text)[-1]["detail"]
