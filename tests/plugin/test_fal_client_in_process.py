"""The official fal-client, unchanged, inside tests that use `fal_mock`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import fal_client
import httpx
import pytest

from mockserver.testing import InProcessFal

DEV = "fal-ai/flux-1/dev"


def test_submit_status_result(fal_mock: InProcessFal) -> None:
    handle = fal_client.submit(DEV, arguments={"prompt": "a cat", "num_images": 2})
    assert isinstance(handle.status(with_logs=True), fal_client.Completed)
    result = handle.get()
    assert len(result["images"]) == 2
    fal_mock.assert_called(DEV, times=1)
    fal_mock.assert_nothing_unexpected()


def test_subscribe_with_logs_and_queue_updates(fal_mock: InProcessFal) -> None:
    updates: list[Any] = []
    result = fal_client.subscribe(
        DEV, arguments={"prompt": "x", "seed": 42}, with_logs=True, on_queue_update=updates.append
    )
    assert result["seed"] == 42
    assert isinstance(updates[-1], fal_client.Completed)
    logs = updates[-1].logs or []
    assert logs[0]["message"] == "Loading model weights"


def test_run_is_synchronous(fal_mock: InProcessFal) -> None:
    result = fal_client.run("fal-ai/flux-1/schnell", arguments={"prompt": "sync"})
    assert result["prompt"] == "sync"
    fal_mock.assert_called("fal-ai/flux-1/schnell", action="run")


def test_cancel_a_slow_request(fal_mock: InProcessFal) -> None:
    fal_mock.set_timing(queue_seconds=5, run_seconds=5)
    handle = fal_client.submit(DEV, arguments={"prompt": "x"})
    assert isinstance(handle.status(), fal_client.Queued)
    handle.cancel()
    fal_mock.advance(20)
    with pytest.raises(fal_client.client.FalClientHTTPError) as info:
        handle.get()
    assert info.value.status_code == 499


def test_upload_then_image_to_image(fal_mock: InProcessFal, tmp_path: Path) -> None:
    picture = tmp_path / "cat.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    url = fal_client.upload_file(picture)
    assert url.startswith("https://v3.fal.media/files/uploads/") and url.endswith(".png")
    assert httpx.get(url).content == picture.read_bytes()
    result = fal_client.subscribe(
        f"{DEV}/image-to-image", arguments={"prompt": "wizard", "image_url": url}
    )
    assert result["images"]
    submitted = fal_mock.calls(f"{DEV}/image-to-image", action="submit")[0]
    assert submitted.body["image_url"] == url


def test_async_client(fal_mock: InProcessFal) -> None:
    async def flow() -> dict[str, Any]:
        handle = await fal_client.submit_async(DEV, arguments={"prompt": "async"})
        return await handle.get()

    assert asyncio.run(flow())["prompt"] == "async"


def test_validation_error_surfaces_as_fal_client_http_error(fal_mock: InProcessFal) -> None:
    with pytest.raises(fal_client.client.FalClientHTTPError) as info:
        fal_client.submit(DEV, arguments={"num_images": 2})
    assert info.value.status_code == 422
    with pytest.raises(AssertionError, match="1 request\\(s\\) to the fal mock were refused"):
        fal_mock.assert_nothing_unexpected()


def test_scripted_model_error(fal_mock: InProcessFal) -> None:
    fal_mock.next_outcome(DEV, "model_error")
    with pytest.raises(fal_client.client.FalClientHTTPError) as info:
        fal_client.subscribe(DEV, arguments={"prompt": "x"})
    assert info.value.status_code == 422


@pytest.mark.fal_mock(profile="intermediary", intermediary_urls=["https://api.intermediary.test"])
def test_intermediary_flow_with_plain_httpx(fal_mock: InProcessFal) -> None:
    assert fal_mock.base_url == "https://api.intermediary.test"
    with httpx.Client(headers={"Authorization": f"Bearer {fal_mock.key}"}) as http:
        queued = http.post(f"{fal_mock.base_url}/{DEV}", json={"prompt": "x"}).json()
        assert queued["response_url"].startswith("https://queue.fal.run/")
        response_url = queued["response_url"].replace("https://queue.fal.run", fal_mock.base_url)
        assert http.get(response_url).json()["prompt"] == "x"
    assert fal_mock.requests[0].headers["authorization"] == "Bearer ***"


def test_other_hosts_pass_through(fal_mock: InProcessFal, fal_server: Any) -> None:
    # a non-fal host (here: a real server on 127.0.0.1) is not intercepted
    assert httpx.get(f"{fal_server.base_url}/_mock/health").json()["status"] == "ok"
