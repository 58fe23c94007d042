"""Realtime: scoped, expiring tokens and the msgpack WebSocket, in process."""

from __future__ import annotations

import json
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from mockserver import FalMock, ManualClock, create_app
from mockserver.outcomes import Outcome
from tests.conftest import AUTH, DEV, MockFactory

SCHNELL = "fal-ai/flux-1/schnell"


@pytest.fixture
def client(make_mock: MockFactory) -> TestClient:
    return TestClient(create_app(make_mock(instant=True)), headers=AUTH)


def _token(client: TestClient, apps: list[str], expiration: int = 120) -> str:
    answer = client.post("/tokens/", json={"allowed_apps": apps, "token_expiration": expiration})
    assert answer.status_code == 201, answer.text
    token = answer.json()
    assert isinstance(token, str) and len(token) > 20
    return token


def _error(frame: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(frame)
    assert data["type"] == "x-fal-error"
    return data


def test_each_msgpack_input_gets_the_models_output(client: TestClient) -> None:
    token = _token(client, ["flux-1"])
    with client.websocket_connect(f"/_run/{SCHNELL}/realtime?fal_jwt_token={token}") as ws:
        for prompt in ("one", "two"):
            ws.send_bytes(msgpack.packb({"prompt": prompt, "seed": 4}))
            output = msgpack.unpackb(ws.receive_bytes())
            assert output["prompt"] == prompt and output["seed"] == 4 and output["images"]


def test_the_handshake_may_carry_the_key_instead(client: TestClient) -> None:
    with client.websocket_connect(f"/{DEV}/realtime", headers=AUTH) as ws:
        ws.send_text(json.dumps({"prompt": "text frame"}))  # JSON text is read too
        assert msgpack.unpackb(ws.receive_bytes())["prompt"] == "text frame"


def test_bad_inputs_and_model_errors_are_error_frames(
    client: TestClient, make_mock: MockFactory
) -> None:
    mock: FalMock = client.app.state.mock  # type: ignore[attr-defined]
    token = _token(client, ["flux-1"])
    with client.websocket_connect(f"/{DEV}/realtime?fal_jwt_token={token}") as ws:
        ws.send_bytes(msgpack.packb({"num_images": 2}))
        invalid = _error(ws.receive_text())
        assert invalid["error"] == "VALIDATION_ERROR" and "prompt" in invalid["reason"]
        ws.send_bytes(b"\xc1not msgpack")
        assert _error(ws.receive_text())["error"] == "INVALID_MESSAGE"
        mock.next_outcome(DEV, Outcome.model_error())
        ws.send_bytes(msgpack.packb({"prompt": "x"}))
        failed = _error(ws.receive_text())
        assert failed["error"] == "APP_ERROR" and failed["status_code"] == 422
        ws.send_bytes(msgpack.packb({"prompt": "still open"}))
        assert msgpack.unpackb(ws.receive_bytes())["prompt"] == "still open"


def _refused(client: TestClient, url: str) -> dict[str, Any]:
    with client.websocket_connect(url) as ws:
        frame = _error(ws.receive_text())
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1008
    return frame


def test_tokens_are_scoped_and_expire_on_the_mock_clock(
    client: TestClient, clock: ManualClock
) -> None:
    token = _token(client, ["flux-1"], expiration=60)
    other = _refused(client, f"/fal-ai/other/realtime?fal_jwt_token={token}")
    assert other["error"] == "UNAUTHORIZED" and "not for app" in other["reason"]
    assert _refused(client, f"/{DEV}/realtime?fal_jwt_token=forged")["error"] == "UNAUTHORIZED"
    clock.advance(60)
    expired = _refused(client, f"/{DEV}/realtime?fal_jwt_token={token}")
    assert "expired" in expired["reason"]


def test_unknown_apps_and_paths_are_refused(client: TestClient) -> None:
    token = _token(client, ["nope"])
    assert _refused(client, f"/acme/nope/realtime?fal_jwt_token={token}")["error"] == "NOT_FOUND"
    assert _refused(client, f"/{DEV}?fal_jwt_token={token}")["error"] == "NOT_FOUND"
    keyless = TestClient(client.app)
    assert _refused(keyless, f"/{DEV}/realtime")["error"] == "UNAUTHORIZED"  # no key, no token


def test_bad_token_requests_get_json_errors(client: TestClient) -> None:
    assert client.post("/tokens/", json={"allowed_apps": []}).status_code == 422
    assert (
        client.post("/tokens/", json={"allowed_apps": ["a"], "token_expiration": 0}).status_code
        == 422
    )
    assert client.post("/tokens/", json=["a"]).status_code == 422
    assert client.get("/tokens/").status_code == 405
    assert (
        client.post(
            "/tokens/", json={"allowed_apps": ["a"]}, headers={"Authorization": ""}
        ).status_code
        == 401
    )


def test_a_token_opens_a_client_mode_stream(client: TestClient) -> None:
    token = _token(client, ["flux-1"])
    answer = client.post(
        f"/_run/{DEV}/stream?fal_jwt_token={token}",
        json={"prompt": "p"},
        headers={"Authorization": ""},
    )
    assert answer.status_code == 200 and answer.text.count("data: ") == 4
    wrong = client.post(
        f"/_run/{DEV}/stream?fal_jwt_token=forged",
        json={"prompt": "p"},
        headers={"Authorization": ""},
    )
    assert wrong.status_code == 401


def test_reset_forgets_tokens(client: TestClient) -> None:
    token = _token(client, ["flux-1"])
    client.app.state.mock.reset()  # type: ignore[attr-defined]
    assert _refused(client, f"/{DEV}/realtime?fal_jwt_token={token}")["error"] == "UNAUTHORIZED"
