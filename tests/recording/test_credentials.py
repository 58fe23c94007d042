"""The recorder learns every credential a request carries and refuses requests
whose credentials disagree; nothing of any key (or half of one) reaches disk.
In process: the upstream is a `FalMock` behind an ASGI transport."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.recording import Recorder, RecordingStore, create_recorder_app
from mockserver.redact import Redactor

UPSTREAM = "http://upstream.test"
KEY_ID = "0f1e2d3c-aaaa-bbbb-cccc-000011112222"
KEY_SECRET = "5ecret5ecret5ecret0123456789"
KEY = f"{KEY_ID}:{KEY_SECRET}"


@contextlib.contextmanager
def recording(out: Path) -> Iterator[tuple[FalMock, TestClient]]:
    mock = FalMock(MockConfig(instant=True), clock=ManualClock())
    store = RecordingStore(out, Redactor.build(), UPSTREAM)
    recorder = Recorder(UPSTREAM, store, transport=httpx.ASGITransport(create_app(mock)))
    with TestClient(create_recorder_app(recorder), base_url="http://proxy.test") as client:
        yield mock, client


def record(client: TestClient, payload: dict[str, Any], headers: Any) -> int:
    """Submit through the proxy and fetch the result (which is what gets recorded)."""
    queued = client.post("/fal-ai/flux-1/dev", json=payload, headers=headers)
    assert queued.status_code == 200, queued.text
    request_id = queued.json()["request_id"]
    status = client.get(f"/fal-ai/flux-1/requests/{request_id}/status", headers=headers)
    assert status.json()["status"] == "COMPLETED"
    return client.get(f"/fal-ai/flux-1/requests/{request_id}", headers=headers).status_code


def on_disk(out: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file())


def test_credentials_that_disagree_are_refused_before_forwarding(tmp_path: Path) -> None:
    with recording(tmp_path) as (mock, client):
        answer = client.post(
            "/fal-ai/flux-1/dev",
            json={"prompt": "x"},
            headers=[("Authorization", "Key first-key-1111"), ("Authorization", f"Key {KEY}")],
        )
        assert answer.status_code == 400
        assert "Authorization headers" in answer.json()["detail"]
        assert mock.requests == []  # nothing reached the upstream
        again = client.post(
            "/fal-ai/flux-1/dev",
            json={"prompt": "x"},
            headers=[("Authorization", f"Key {KEY}"), ("Authorization", f"Key {KEY}")],
        )
        assert again.status_code == 200  # the same credential twice does not disagree


def test_no_part_of_an_id_secret_key_is_written(tmp_path: Path) -> None:
    prompt = f"id {KEY_ID} and secret {KEY_SECRET} pasted by mistake"
    with recording(tmp_path) as (_, client):
        assert record(client, {"prompt": prompt}, {"Authorization": f"Key {KEY}"}) == 200
    written = on_disk(tmp_path)
    assert b"examples" in written
    assert KEY_ID.encode() not in written and KEY_SECRET.encode() not in written


def test_keys_in_body_fields_and_other_headers_are_learnt(tmp_path: Path) -> None:
    body_key = "body-only-api-key-98765"
    header_key = "header-only-key-43210"
    prompt = f"uses {body_key} and {header_key}"
    headers = {"Authorization": f"Key {KEY}", "X-Fal-Key": header_key}
    with recording(tmp_path) as (_, client):
        assert record(client, {"prompt": prompt, "api_key": body_key}, headers) == 200
    written = on_disk(tmp_path)
    assert b"examples" in written
    assert body_key.encode() not in written and header_key.encode() not in written
