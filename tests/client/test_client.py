"""The reference client against the in-process mock (sync API; async twin below)."""

from __future__ import annotations

import asyncio
import io
import random
from pathlib import Path
from typing import cast

import httpx
import pytest
from PIL import Image

from mockserver import INTERMEDIARY, OFFICIAL, FalMock, Fault, Outcome, create_app
from mockserver.client import (
    AsyncFalClient,
    ClientSettings,
    Completed,
    FalClient,
    FalHTTPError,
    FalProtocolError,
    FalTimeoutError,
    FalTransportError,
    FalValidationError,
    InProgress,
    Queued,
    protocol,
)
from mockserver.client.protocol import AuthScheme
from mockserver.transport import AppTransport, SyncAppTransport
from tests.client.conftest import BASE, Sleeper
from tests.conftest import DEV, MockFactory

SECRET = "client-secret-key"


def test_submit_status_result(fal: FalClient, mock: FalMock) -> None:
    handle = fal.submit(DEV, {"prompt": "a cat", "num_images": 2})
    assert handle.status_url == f"{BASE}/fal-ai/flux-1/requests/{handle.request_id}/status"
    assert isinstance(fal.status(handle), Queued)
    mock.advance(1.5)
    running = fal.status(handle, with_logs=True)
    assert isinstance(running, InProgress) and running.logs
    mock.advance(1)
    done = fal.status(handle)
    assert isinstance(done, Completed) and done.metrics == {"inference_time": 1.0}
    assert len(fal.result(handle)["images"]) == 2


def test_subscribe_polls_by_moving_the_mock_clock(fal: FalClient, sleeper: Sleeper) -> None:
    seen: list[type] = []
    output = fal.subscribe(
        DEV, {"prompt": "x", "seed": 3}, with_logs=True, on_update=lambda s: seen.append(type(s))
    )
    assert output["seed"] == 3
    assert seen[0] is Queued and seen[-1] is Completed and InProgress in seen
    assert all(wait == 0.1 for wait in sleeper.waits)


def test_subscribe_refuses_an_unknown_mode_before_sending(fal: FalClient, mock: FalMock) -> None:
    with pytest.raises(ValueError, match="mode must be one of polling, streaming; got 'stream'"):
        fal.subscribe(DEV, {"prompt": "x"}, mode="stream")  # type: ignore[arg-type]
    assert mock.requests == []  # a typo never falls back to polling (or bills a submit)


def test_an_unknown_priority_is_refused_before_sending(fal: FalClient, mock: FalMock) -> None:
    with pytest.raises(ValueError, match="priority must be one of normal, low; got 'urgent'"):
        fal.subscribe(DEV, {"prompt": "x"}, priority="urgent")  # type: ignore[arg-type]
    assert mock.requests == []


def test_subscribe_passes_its_submit_options_on(fal: FalClient, mock: FalMock) -> None:
    fal.subscribe(DEV, {"prompt": "x"}, priority="low", headers={"X-Fal-Request-Timeout": "30"})
    (submit,) = [r for r in mock.requests if r.action == "submit"]
    assert submit.headers["x-fal-queue-priority"] == "low"
    assert submit.headers["x-fal-request-timeout"] == "30"


def test_subscribe_timeout_cancels_and_raises(fal: FalClient, mock: FalMock) -> None:
    mock.next_outcome(DEV, Outcome.slow(600))
    with pytest.raises(FalTimeoutError) as info:
        fal.subscribe(DEV, {"prompt": "x"}, timeout=5)
    job = mock.engine.get(info.value.request_id or "")
    assert job is not None and job.cancelled


def test_cancel_answers(fal: FalClient, mock: FalMock) -> None:
    handle = fal.submit(DEV, {"prompt": "x"})
    assert fal.cancel(handle) == "CANCELLATION_REQUESTED"
    with pytest.raises(FalHTTPError) as info:
        fal.result(handle)
    assert info.value.status_code == 499
    done = fal.submit(DEV, {"prompt": "y"})
    mock.advance(10)
    assert fal.cancel(done) == "ALREADY_COMPLETED"


def test_validation_errors_expose_fields(fal: FalClient) -> None:
    with pytest.raises(FalValidationError) as info:
        fal.submit(DEV, {"num_images": 9})
    error = info.value
    assert error.status_code == 422
    assert error.fields == ["num_images", "prompt"]
    assert {e["type"] for e in error.errors} == {"less_than_equal", "missing"}


def test_model_and_infrastructure_errors_are_typed(fal: FalClient, mock: FalMock) -> None:
    mock.next_outcome(DEV, Outcome.infra_error("runner_disconnected"))
    handle = fal.submit(DEV, {"prompt": "x"})
    mock.advance(5)
    status = fal.status(handle)
    assert isinstance(status, Completed) and status.error_type == "runner_disconnected"
    with pytest.raises(FalHTTPError) as info:
        fal.result(handle)
    assert (info.value.status_code, info.value.error_type, info.value.request_id) == (
        503,
        "runner_disconnected",
        handle.request_id,
    )


def test_unknown_request_is_404(fal: FalClient) -> None:
    with pytest.raises(FalHTTPError) as info:
        fal.status(fal.handle(DEV, "00000000-0000-4000-8000-000000000000"))
    assert info.value.status_code == 404 and "not found" in str(info.value.detail)


def test_retries_429_honouring_retry_after(fal: FalClient, mock: FalMock, sleeper: Sleeper) -> None:
    mock.add_fault(Fault(status_code=429, retry_after=2.5, action="submit", times=2))
    handle = fal.submit(DEV, {"prompt": "x"})
    assert handle.request_id
    assert sleeper.waits == [2.5, 2.5]


def test_retries_5xx_with_backoff_on_reads_but_not_on_submit(
    fal: FalClient, mock: FalMock, sleeper: Sleeper
) -> None:
    handle = fal.submit(DEV, {"prompt": "x"})
    mock.add_fault(Fault(status_code=503, action="status", times=3))
    assert isinstance(fal.status(handle), Queued)
    assert len(sleeper.waits) == 3
    # exponential with jitter: each wait within [b*2^n/2, b*2^n]
    for n, wait in enumerate(sleeper.waits):
        assert 0.1 * 2**n / 2 <= wait <= 0.1 * 2**n
    mock.add_fault(Fault(status_code=503, action="submit"))
    with pytest.raises(FalHTTPError) as info:
        fal.submit(DEV, {"prompt": "x"})  # the server may have accepted it: no retry
    assert info.value.status_code == 503
    assert len(mock.engine) == 1


def test_gives_up_after_max_retries(fal: FalClient, mock: FalMock) -> None:
    handle = fal.submit(DEV, {"prompt": "x"})
    mock.add_fault(Fault(status_code=502, action="status", times=None))
    with pytest.raises(FalHTTPError) as info:
        fal.status(handle)
    assert info.value.status_code == 502
    assert sum(1 for r in mock.requests if r.action == "status") == 4  # 1 + 3 retries


def test_dropped_connections_are_retried_then_reported(fal: FalClient, mock: FalMock) -> None:
    handle = fal.submit(DEV, {"prompt": "x"})
    mock.add_fault(Fault(drop=True, action="status"))
    assert isinstance(fal.status(handle), Queued)
    mock.add_fault(Fault(drop=True, action="status", times=None))
    with pytest.raises(FalTransportError, match="RemoteProtocolError"):
        fal.status(handle)
    mock.faults.clear()
    mock.add_fault(Fault(drop=True, action="submit"))
    with pytest.raises(FalTransportError):
        fal.submit(DEV, {"prompt": "x"})


def test_never_a_bare_exception_when_the_server_misbehaves() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/status"):
            return httpx.Response(
                202, json={"status": "IN_PROGRESS", "request_id": "r"}
            )  # no logs key
        if path.endswith("/cancel"):
            return httpx.Response(200, json={"status": "WEIRD"})
        if "/requests/" in path:
            return httpx.Response(502, html="<html>Bad Gateway</html>")
        return httpx.Response(200, text="not json")

    client = FalClient(
        ClientSettings(base_url=BASE, key="k", max_retries=0),
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(FalProtocolError, match="expected JSON"):
        client.submit(DEV, {"prompt": "x"})
    handle = client.handle(DEV, "r")
    with pytest.raises(FalProtocolError, match="'logs' key"):
        client.status(handle)
    with pytest.raises(FalHTTPError, match="Bad Gateway") as info:
        client.result(handle)
    assert info.value.status_code == 502
    assert client.cancel(handle) == "WEIRD"


def test_unknown_status_and_missing_fields_are_protocol_errors() -> None:
    answers = iter(
        [
            httpx.Response(200, json={"request_id": "r", "status_url": "x", "cancel_url": "y"}),
            httpx.Response(200, json={"status": "FAILED"}),
            httpx.Response(202, json={"status": "IN_QUEUE"}),
        ]
    )
    client = FalClient(
        ClientSettings(base_url=BASE, key="k"),
        transport=httpx.MockTransport(lambda r: next(answers)),
    )
    with pytest.raises(FalProtocolError, match="'response_url' should be str, got missing"):
        client.submit(DEV, {})
    with pytest.raises(FalProtocolError, match="unknown status 'FAILED'"):
        client.status(client.handle(DEV, "r"))
    with pytest.raises(FalProtocolError, match="'queue_position'"):
        client.status(client.handle(DEV, "r"))


def test_the_key_never_leaks(fal: FalClient, mock: FalMock) -> None:
    mock.add_fault(Fault(status_code=500, detail="boom", action="submit"))
    with pytest.raises(FalHTTPError) as info:
        fal.submit(DEV, {"prompt": "x"})
    for text in (repr(fal), repr(fal.settings), str(info.value), repr(info.value)):
        assert SECRET not in text


def test_intermediary_urls_are_rewritten_and_agree_with_built_ones(make_mock: MockFactory) -> None:
    mock = make_mock(profile=INTERMEDIARY, instant=True)
    transport = SyncAppTransport(create_app(mock))
    settings = ClientSettings(base_url="http://127.0.0.1:9999", key="k", auth_scheme="Bearer")
    with FalClient(settings, transport=transport) as client:
        handle = client.submit(DEV, {"prompt": "x"})  # the mock answered with queue.fal.run URLs
        built = client.handle(DEV, handle.request_id)
        returned = (handle.response_url, handle.status_url, handle.cancel_url)
        assert returned == (built.response_url, built.status_url, built.cancel_url)
        assert handle.response_url.startswith("http://127.0.0.1:9999/fal-ai/flux-1/requests/")
        assert client.result(handle)["prompt"] == "x"
    transport.close()


def test_save_downloads_every_media_file_without_the_key(
    fal: FalClient, mock: FalMock, tmp_path: Path
) -> None:
    output = fal.subscribe(
        DEV, {"prompt": "x", "num_images": 2, "image_size": "square", "output_format": "png"}
    )
    progress: list[tuple[str, int, int | None]] = []
    paths = fal.save(output, tmp_path / "out", progress=lambda *a: progress.append(a))
    assert len(paths) == 2 and len({p.name for p in paths}) == 2
    for path in paths:
        assert Image.open(io.BytesIO(path.read_bytes())).size == (512, 512)
    assert progress[-1][1] == progress[-1][2]  # done == total
    media_requests = [r for r in mock.requests if r.path.startswith("/files/")]
    assert media_requests == []  # media are not protocol requests: not logged...
    video = fal.subscribe("fal-ai/example-video/text-to-video", {"prompt": "lion"})
    [clip] = fal.save(video, tmp_path / "video")
    assert clip.name == "output.mp4" and clip.read_bytes()[4:8] == b"ftyp"


def test_save_refuses_path_tricks(tmp_path: Path) -> None:
    taken: set[str] = set()
    assert protocol.file_name_for("https://x/files/../../etc/passwd", None, taken) == "passwd"
    assert protocol.file_name_for("https://x/a", "../../evil.sh", taken) == "evil.sh"
    assert protocol.file_name_for("https://x/a", ".bashrc", taken) == "bashrc"
    assert protocol.file_name_for("https://x/passwd", None, taken) == "passwd-1"


def test_async_client_streams_and_polls(make_mock: MockFactory) -> None:
    async def scenario() -> tuple[list[str], dict[str, object], list[str]]:
        mock = make_mock()

        async def advance(seconds: float) -> None:
            mock.advance(seconds)
            await asyncio.sleep(0)

        settings = ClientSettings(base_url=BASE, key="k")
        async with AsyncFalClient(
            settings, transport=AppTransport(create_app(mock)), sleep=advance, rng=random.Random(1)
        ) as client:
            polled: list[str] = []
            await client.subscribe(
                DEV, {"prompt": "p"}, on_update=lambda s: polled.append(type(s).__name__)
            )
            handle = await client.submit(DEV, {"prompt": "s"})
            mock.advance(10)  # completed: the stream is a single event, closed by the server
            streamed = [
                type(s).__name__ async for s in client.stream_status(handle, with_logs=True)
            ]
            return polled, await client.result(handle), streamed

    polled, result, streamed = asyncio.run(scenario())
    assert polled[0] == "Queued" and polled[-1] == "Completed"
    assert result["prompt"] == "s" and streamed == ["Completed"]


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 422])
def test_never_retries_other_4xx(code: int) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(code, json={"detail": "no"})

    waits: list[float] = []
    client = FalClient(
        ClientSettings(base_url=BASE, key="k"),
        transport=httpx.MockTransport(handler),
        sleep=waits.append,
    )
    with pytest.raises(FalHTTPError) as info:
        client.status(client.handle(DEV, "r"))
    assert info.value.status_code == code
    assert len(calls) == 1 and waits == []


@pytest.mark.parametrize(
    ("endpoint", "app_path"),
    [
        ("workflows/acme/pipeline/step", "/workflows/acme/pipeline/requests/"),
        ("123-my-app", "/123/my-app/requests/"),
        ("acme/tool/a/b/c", "/acme/tool/requests/"),
    ],
)
def test_built_and_returned_urls_agree_for_every_id_form(
    tmp_path: Path, endpoint: str, app_path: str
) -> None:
    import yaml

    from mockserver import Catalog, ManualClock, MockConfig
    from mockserver.contracts import builtin_contracts_dir

    data = yaml.safe_load(
        (builtin_contracts_dir() / "models" / "fal-ai" / "flux-1" / "schnell.yaml").read_text()
    )
    data["endpoint_id"] = endpoint
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(data))
    for profile, scheme in ((OFFICIAL, "Key"), (INTERMEDIARY, "Bearer")):
        config = MockConfig(instant=True, profile=profile)
        mock = FalMock(config, clock=ManualClock(), catalog=Catalog.load(tmp_path, builtin=False))
        transport = SyncAppTransport(create_app(mock))
        settings = ClientSettings(base_url=BASE, key="k", auth_scheme=cast(AuthScheme, scheme))
        with FalClient(settings, transport=transport) as client:
            handle = client.submit(endpoint, {"prompt": "x"})
            built = client.handle(endpoint, handle.request_id)
            assert (handle.response_url, handle.status_url, handle.cancel_url) == (
                built.response_url,
                built.status_url,
                built.cancel_url,
            )
            assert handle.response_url == f"{BASE}{app_path}{handle.request_id}"
            assert client.result(handle)["prompt"] == "x"
        transport.close()
