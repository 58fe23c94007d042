"""Against a real `mockserver serve` process on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e.server import ServerPool, running_server

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": "Key e2e-key"}


@pytest.fixture
def base(mock_servers: ServerPool) -> str:
    return mock_servers.get("--clock", "manual", "--runners", "1")


@pytest.fixture
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=10) as client:
        yield client


def _advance(http: httpx.Client, seconds: float) -> None:
    assert http.post("/_mock/clock/advance", json={"seconds": seconds}).status_code == 200


def test_full_queue_flow_over_tcp(http: httpx.Client, base: str) -> None:
    queued = http.post(
        "/fal-ai/flux-1/dev", json={"prompt": "e2e", "image_size": "square"}, headers=AUTH
    ).json()
    assert queued["status_url"].startswith(base + "/fal-ai/flux-1/requests/")
    assert http.get(queued["status_url"], headers=AUTH).status_code == 202
    assert http.get(queued["response_url"], headers=AUTH).status_code == 400
    _advance(http, 2)
    status = http.get(queued["status_url"], params={"logs": "true"}, headers=AUTH)
    assert status.status_code == 200 and len(status.json()["logs"]) == 4
    result = http.get(queued["response_url"], headers=AUTH)
    assert result.headers["x-fal-request-id"] == queued["request_id"]
    image = result.json()["images"][0]
    picture = Image.open(io.BytesIO(http.get(image["url"]).content))
    assert picture.size == (512, 512) == (image["width"], image["height"])


def test_sse_stream_over_tcp(http: httpx.Client) -> None:
    queued = http.post("/fal-ai/flux-1/dev", json={"prompt": "e2e"}, headers=AUTH).json()
    seen: list[dict[str, object]] = []
    with http.stream(
        "GET", queued["status_url"] + "/stream", params={"logs": 1}, headers=AUTH
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if not line.startswith("data: "):
                continue
            seen.append(json.loads(line[6:]))
            if seen[-1]["status"] != "COMPLETED":
                _advance(http, 1.0)  # each step changes the state: the stream must follow
    assert seen[0]["status"] == "IN_QUEUE"
    assert seen[-1]["status"] == "COMPLETED"
    assert [event["status"] for event in seen] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    messages = [[entry["message"] for entry in event["logs"]] for event in seen]  # type: ignore[attr-defined]
    assert messages == [
        [],
        ["Loading model weights"],
        ["Running inference", "Decoding latents", "Uploading result"],
    ]


def test_cancel_over_tcp(http: httpx.Client) -> None:
    first = http.post("/fal-ai/flux-1/dev", json={"prompt": "a"}, headers=AUTH).json()
    second = http.post("/fal-ai/flux-1/dev", json={"prompt": "b"}, headers=AUTH).json()
    assert second["queue_position"] == 1
    assert http.put(second["cancel_url"], headers=AUTH).status_code == 202
    assert http.get(second["response_url"], headers=AUTH).status_code == 499
    _advance(http, 5)
    assert http.put(first["cancel_url"], headers=AUTH).json()["status"] == "ALREADY_COMPLETED"


def test_dropped_connection_is_a_transport_error(http: httpx.Client) -> None:
    http.post("/_mock/faults", json={"drop": True, "action": "submit"})
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/fal-ai/flux-1/dev", json={"prompt": "x"}, headers=AUTH)
    assert http.post("/fal-ai/flux-1/dev", json={"prompt": "x"}, headers=AUTH).status_code == 200


def test_injected_latency_delays_the_answer(http: httpx.Client) -> None:
    http.post("/_mock/faults", json={"latency": 0.3, "action": "status"})
    queued = http.post("/fal-ai/flux-1/dev", json={"prompt": "x"}, headers=AUTH).json()
    with pytest.raises(httpx.ReadTimeout):
        http.get(queued["status_url"], headers=AUTH, timeout=0.05)


def test_intermediary_profile_process(mock_servers: ServerPool) -> None:
    base = mock_servers.get("--profile", "intermediary", "--instant")
    with httpx.Client(timeout=10) as http:
        bearer = {"Authorization": "Bearer hk-your-key"}
        assert (
            http.post(f"{base}/fal-ai/flux-1/dev", json={"prompt": "x"}, headers=AUTH).status_code
            == 401
        )
        queued = http.post(f"{base}/fal-ai/flux-1/dev", json={"prompt": "x"}, headers=bearer).json()
        assert queued["response_url"].startswith("https://queue.fal.run/fal-ai/flux-1/requests/")
        result_url = queued["response_url"].replace("https://queue.fal.run", base)
        assert http.get(result_url, headers=bearer).json()["prompt"] == "x"


def test_only_configured_keys(mock_servers: ServerPool) -> None:
    base = mock_servers.get(
        "--keys-env", "MOCK_KEYS", "--instant", env={"MOCK_KEYS": "alpha, beta"}
    )
    with httpx.Client(timeout=10) as http:
        for key, code in (("alpha", 200), ("beta", 200), ("gamma", 401)):
            response = http.post(
                f"{base}/fal-ai/flux-1/dev",
                json={"prompt": "x"},
                headers={"Authorization": f"Key {key}"},
            )
            assert response.status_code == code


def test_malformed_contract_fails_at_startup_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "models" / "acme" / "broken.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("endpoint_id: acme/broken\noutput: images\n")
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "serve", "--contracts", str(tmp_path), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert str(bad) in result.stderr and "input_schema" in result.stderr
    assert "Traceback" not in result.stderr


def test_official_fal_client_runs_unchanged_over_tls(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.private_key_pem.write_to_path(str(key_file))
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    authority.cert_pem.write_to_path(str(ca_file))
    args = (
        "--ssl-certfile",
        str(cert_file),
        "--ssl-keyfile",
        str(key_file),
        "--queue-seconds",
        "0.2",
        "--run-seconds",
        "0.3",
    )
    with running_server(*args, scheme="https", ca_file=str(ca_file)) as base:
        host = base.removeprefix("https://")
        env = {
            **os.environ,
            "FAL_KEY": "fal-client-key",
            "FAL_QUEUE_RUN_HOST": host,
            "FAL_RUN_HOST": f"{host}/_run",
            "SSL_CERT_FILE": str(ca_file),
        }
        script = Path(__file__).with_name("fal_client_flow.py")
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout.strip().splitlines()[-1])
    assert findings == {
        "status": "Completed",
        "first_images": 2,
        "subscribed_seed": 7,
        "updates": ["Completed", "InProgress", "Queued"],
        "run_prompt": "sync run",
        "validation": 422,
    }
