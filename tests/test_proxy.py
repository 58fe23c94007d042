"""The `proxyUrl` convention: every surface reached through `x-fal-target-url`."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from mockserver import create_app
from tests.conftest import AUTH, DEV, MockFactory, path_of

PROXY = "/api/fal/proxy"


def _via(target: str) -> dict[str, str]:
    return {"x-fal-target-url": target}


@pytest.fixture
def client(make_mock: MockFactory) -> TestClient:
    return TestClient(create_app(make_mock(instant=True)), headers=AUTH)


def test_queue_flow_through_the_proxy(client: TestClient) -> None:
    queued = client.post(
        PROXY, json={"prompt": "proxied"}, headers=_via(f"https://queue.fal.run/{DEV}")
    )
    assert queued.status_code == 200, queued.text
    request_id = queued.json()["request_id"]
    base = f"https://queue.fal.run/fal-ai/flux-1/requests/{request_id}"
    status = client.get(PROXY, headers=_via(f"{base}/status?logs=1"))
    assert status.json()["status"] == "COMPLETED" and status.json()["logs"]
    result = client.get(PROXY, headers=_via(base))
    assert result.json()["prompt"] == "proxied"
    assert result.headers["x-fal-request-id"] == request_id


def test_run_stream_storage_and_tokens_through_the_proxy(client: TestClient) -> None:
    ran = client.post(PROXY, json={"prompt": "run"}, headers=_via(f"https://fal.run/{DEV}"))
    assert ran.status_code == 200 and ran.json()["prompt"] == "run"
    streamed = client.post(
        "/api/_fal/proxy", json={"prompt": "s"}, headers=_via(f"https://fal.run/{DEV}/stream")
    )
    events = [json.loads(x[6:]) for x in streamed.text.splitlines() if x.startswith("data: ")]
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert events[-1]["prompt"] == "s"
    urls = client.post(
        PROXY,
        json={"content_type": "text/plain", "file_name": "a.txt"},
        headers=_via("https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3"),
    ).json()
    # the upload URL is this server's: the JS client PUTs to it directly
    assert urls["upload_url"].startswith("http://testserver/storage/uploads/")
    assert client.put(path_of(urls["upload_url"]), content=b"hi").status_code == 200
    assert client.get(path_of(urls["file_url"])).content == b"hi"


def test_without_a_key_the_proxy_adds_its_own(make_mock: MockFactory) -> None:
    mock = make_mock(instant=True, keys=frozenset({"server-side-key"}))
    with TestClient(create_app(mock)) as client:
        queued = client.post(
            PROXY, json={"prompt": "x"}, headers=_via(f"https://queue.fal.run/{DEV}")
        )
        assert queued.status_code == 200
        wrong = client.post(
            PROXY,
            json={"prompt": "x"},
            headers={**_via(f"https://queue.fal.run/{DEV}"), "Authorization": "Key nope"},
        )
        assert wrong.status_code == 401


def test_bad_proxy_requests(client: TestClient) -> None:
    missing = client.post(PROXY, json={})
    assert missing.status_code == 400 and "x-fal-target-url" in missing.json()["detail"]
    elsewhere = client.post(PROXY, json={}, headers=_via("https://example.com/x"))
    assert elsewhere.status_code == 412
    lookalike = client.post(PROXY, json={}, headers=_via("https://notfal.run.example/x"))
    assert lookalike.status_code == 412
    unknown = client.post(
        PROXY, json={"prompt": "x"}, headers=_via("https://queue.fal.run/acme/none")
    )
    assert unknown.status_code == 404 and "detail" in unknown.json()


def test_a_proxy_that_may_not_add_a_key_passes_keyless_requests_on_as_they_are(
    make_mock: MockFactory,
) -> None:
    # What `serve --host 0.0.0.0` (without --proxy-adds-key) runs: nobody gets the key's rights.
    mock = make_mock(instant=True, keys=frozenset({"server-side-key"}), proxy_adds_key=False)
    with TestClient(create_app(mock)) as client:
        keyless = client.post(
            PROXY, json={"prompt": "x"}, headers=_via(f"https://queue.fal.run/{DEV}")
        )
        assert keyless.status_code == 401 and keyless.json()["detail"]
        token = client.post(
            PROXY, json={"allowed_apps": ["flux-1"]}, headers=_via("https://rest.fal.ai/tokens/")
        )
        assert token.status_code == 401
        keyed = client.post(
            PROXY,
            json={"prompt": "x"},
            headers={
                **_via(f"https://queue.fal.run/{DEV}"),
                "Authorization": "Key server-side-key",
            },
        )
        assert keyed.status_code == 200  # a key the app sends itself still works
    assert "server-side-key" not in keyless.text + token.text
