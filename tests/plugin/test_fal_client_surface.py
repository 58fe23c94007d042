"""The official fal-client, unchanged, on the surface beyond the queue, under `fal_mock`."""

from __future__ import annotations

import asyncio
from typing import Any

import fal_client
import httpx
import pytest
from fal_client.client import FalClientHTTPError
from httpx_sse import SSEError

from mockserver.testing import InProcessFal

DEV = "fal-ai/flux-1/dev"


def test_a_missed_start_timeout_is_a_504_the_client_does_not_retry(
    fal_mock: InProcessFal,
) -> None:
    fal_mock.set_timing(queue_seconds=0, run_seconds=30)
    fal_client.submit(DEV, arguments={"prompt": "keeps the only runner busy"})
    late = fal_client.submit(DEV, arguments={"prompt": "late"}, start_timeout=2)
    fal_mock.advance(2)  # the deadline, not the 30 s until a runner frees
    with pytest.raises(FalClientHTTPError) as info:
        late.get()
    assert info.value.status_code == 504 and info.value.error_type == "request_timeout"
    assert info.value.response_headers["x-fal-request-timeout-type"] == "user"
    assert len(fal_mock.calls(DEV, action="result")) == 1  # not retried


def test_a_start_timeout_does_not_cut_off_a_started_run(fal_mock: InProcessFal) -> None:
    fal_mock.set_timing(queue_seconds=1, run_seconds=30)
    handle = fal_client.submit(DEV, arguments={"prompt": "slow"}, start_timeout=2)
    fal_mock.advance(31)
    assert handle.get()["prompt"] == "slow"


def test_stream_yields_partial_outputs_then_the_output(fal_mock: InProcessFal) -> None:
    events = list(fal_client.stream(DEV, arguments={"prompt": "streamed", "seed": 3}))
    assert [event["progress"] for event in events[:-1]] == [0.25, 0.5, 0.75]
    assert events[-1]["prompt"] == "streamed" and events[-1]["seed"] == 3
    fal_mock.assert_called(DEV, action="run_stream", times=1)
    fal_mock.assert_nothing_unexpected()


def test_async_client_stream(fal_mock: InProcessFal) -> None:
    async def collect() -> list[dict[str, Any]]:
        client = fal_client.AsyncClient()
        return [event async for event in client.stream(DEV, arguments={"prompt": "async"})]

    events = asyncio.run(collect())
    assert len(events) == 4 and events[-1]["prompt"] == "async"


def test_a_failing_stream_raises_in_the_client(fal_mock: InProcessFal) -> None:
    fal_mock.next_outcome(DEV, "model_error")
    # fal-client reads the answer as events without checking its status: a
    # JSON error answer is an SSEError there, as against fal itself.
    with pytest.raises(SSEError):
        list(fal_client.stream(DEV, arguments={"prompt": "x"}))


def test_upload_through_fals_storage_api(fal_mock: InProcessFal) -> None:
    url = fal_client.upload(b"via gcs", "text/plain", file_name="a.txt", repository="fal")
    assert httpx.get(url).content == b"via gcs"
    initiated = [r for r in fal_mock.requests if r.path == "/storage/upload/initiate"]
    assert initiated[0].query == {"storage_type": "gcs"}
    fal_mock.assert_nothing_unexpected()


def test_a_large_upload_goes_multipart(
    fal_mock: InProcessFal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fal-client goes multipart above 100 MiB in 10 MiB parts; smaller here, same requests
    monkeypatch.setattr(fal_client.client, "MULTIPART_THRESHOLD", 64 * 1024)
    monkeypatch.setattr(fal_client.client, "MULTIPART_CHUNK_SIZE", 32 * 1024)
    data = bytes(range(256)) * 400  # 100 KiB: four parts
    url = fal_client.upload(data, "application/octet-stream", file_name="big.bin")
    assert httpx.get(url).content == data
    parts = [r for r in fal_mock.requests if "/multipart/" in r.path and r.method == "PUT"]
    assert len(parts) == 4 and all(r.status_code == 200 for r in parts)


def test_async_upload(fal_mock: InProcessFal) -> None:
    async def upload() -> str:
        return await fal_client.AsyncClient().upload(b"async bytes", "text/plain")

    assert httpx.get(asyncio.run(upload())).content == b"async bytes"


def test_realtime_tokens_in_process(fal_mock: InProcessFal) -> None:
    # fal-client asks rest.fal.ai for the token; the WebSocket itself needs a port
    client = fal_client.SyncClient()
    token = client._get_realtime_token("fal-ai/flux-1/schnell")
    assert fal_mock.mock.tokens.check(token, "flux-1") == fal_mock.mock.authenticate(
        f"Key {fal_mock.key}"
    )
