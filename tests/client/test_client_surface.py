"""The reference client's `stream` and `upload`, sync and async, against the mock in process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from mockserver import FalMock, create_app
from mockserver.client import AsyncFalClient, ClientSettings, FalClient
from mockserver.client.errors import FalHTTPError, FalValidationError
from mockserver.outcomes import Outcome
from mockserver.transport import AppTransport, SyncAppTransport
from tests.client.conftest import BASE
from tests.conftest import DEV, MockFactory

SETTINGS = ClientSettings(
    base_url=BASE, key="client-secret-key", multipart_threshold=64, part_size=32
)


@pytest.fixture
def instant(make_mock: MockFactory) -> FalMock:
    return make_mock(instant=True)


@pytest.fixture
def client(instant: FalMock) -> Iterator[FalClient]:
    transport = SyncAppTransport(create_app(instant))
    with FalClient(SETTINGS, transport=transport) as fal:
        yield fal
    transport.close()


def test_settings_derive_the_run_and_rest_hosts() -> None:
    official = ClientSettings()
    assert (official.run_base, official.rest_base) == ("https://fal.run", "https://rest.fal.ai")
    assert (SETTINGS.run_base, SETTINGS.rest_base) == (f"{BASE}/_run", BASE)
    assert ClientSettings(base_url=BASE, run_url="https://r.test/").run_base == "https://r.test"


def test_stream_yields_partials_then_the_output(client: FalClient) -> None:
    events = list(client.stream(DEV, {"prompt": "streamed", "seed": 8}))
    assert [e["progress"] for e in events[:-1]] == [0.25, 0.5, 0.75]
    assert events[-1]["prompt"] == "streamed" and events[-1]["seed"] == 8


def test_a_failed_stream_raises_with_the_request_id(client: FalClient, instant: FalMock) -> None:
    instant.next_outcome(DEV, Outcome.infra_error("runner_disconnected"))
    with pytest.raises(FalHTTPError) as info:
        list(client.stream(DEV, {"prompt": "x"}))
    assert info.value.status_code == 503 and info.value.error_type == "runner_disconnected"
    assert info.value.request_id and len(info.value.request_id) == 36
    with pytest.raises(FalValidationError):
        list(client.stream(DEV, {"num_images": 1}))


@pytest.mark.parametrize("size", [10, 100])  # one PUT, or four parts
def test_upload_round_trips_the_bytes(client: FalClient, instant: FalMock, size: int) -> None:
    data = bytes(range(size))
    url = client.upload(data, "application/octet-stream", "b.bin")
    assert client._http.get(url).content == data
    puts = [r for r in instant.requests if r.action == "upload" and r.method == "PUT"]
    assert len(puts) == (1 if size <= 64 else 4)
    assert all(r.headers.get("authorization") is None for r in puts)  # the key stays home


def test_async_stream_and_upload(instant: FalMock) -> None:
    async def run() -> tuple[list[dict[str, object]], bytes]:
        async with AsyncFalClient(SETTINGS, transport=AppTransport(create_app(instant))) as fal:
            events = [e async for e in fal.stream(DEV, {"prompt": "async"})]
            url = await fal.upload(b"x" * 100, "text/plain")
            fetched = await fal._http.get(url)
            instant.next_outcome(DEV, Outcome.model_error())
            with pytest.raises(FalHTTPError):
                [e async for e in fal.stream(DEV, {"prompt": "fails"})]
            return events, fetched.content

    events, content = asyncio.run(run())
    assert events[-1]["prompt"] == "async" and content == b"x" * 100
