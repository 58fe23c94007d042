"""The surface beyond the queue over TCP, on a `mockserver serve` process with a manual clock.

One server shared with the other modules that want this configuration, reset for each test.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ServerPool, running_server

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": "Key e2e-key"}
DEV = "fal-ai/flux-1/dev"


@pytest.fixture
def base(mock_servers: ServerPool) -> str:
    return mock_servers.get("--clock", "manual", "--runners", "1")


@pytest.fixture
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.post("/_mock/reset").status_code == 200
        yield client


def _advance(http: httpx.Client, seconds: float) -> None:
    assert http.post("/_mock/clock/advance", json={"seconds": seconds}).status_code == 200


def _next_outcome(http: httpx.Client, outcome: dict[str, Any]) -> None:
    answer = http.post("/_mock/outcomes", json={"endpoint_id": DEV, "outcome": outcome})
    assert answer.status_code == 200, answer.text


def _wait_for_jobs(http: httpx.Client, count: int) -> None:
    # The request under test is in flight in another thread: look (over the
    # control API, not the clock) until the mock holds it.
    for _ in range(500):
        if len(http.get("/_mock/jobs").json()) >= count:
            return
    raise AssertionError(f"the mock never held {count} jobs")


def test_stream_events_follow_the_mock_clock(http: httpx.Client) -> None:
    _next_outcome(http, {"kind": "slow", "run_seconds": 4, "queue_seconds": 0})
    seen: list[dict[str, Any]] = []
    with http.stream(
        "POST", f"/_run/{DEV}/stream", json={"prompt": "timed"}, headers=AUTH
    ) as answer:
        assert answer.status_code == 200  # the run started: the answer opens
        request_id = answer.headers["x-fal-request-id"]
        lines = answer.iter_lines()
        for _ in range(4):
            # nothing is due until the clock moves: each second brings one event
            assert http.get(f"/_mock/jobs/{request_id}").json()["status"] == "IN_PROGRESS"
            _advance(http, 1.0)
            line = next(lines)
            while not line.startswith("data: "):
                line = next(lines)
            seen.append(json.loads(line[6:]))
        assert not [rest for rest in lines if rest.startswith("data: ")]
    assert [event.get("progress") for event in seen[:3]] == [0.25, 0.5, 0.75]
    assert seen[3]["prompt"] == "timed"


def test_a_stream_that_misses_its_start_deadline_is_a_504(http: httpx.Client) -> None:
    _next_outcome(http, {"kind": "slow", "run_seconds": 30, "queue_seconds": 0})
    assert http.post(f"/{DEV}", json={"prompt": "busy"}, headers=AUTH).status_code == 200
    headers = {**AUTH, "X-Fal-Request-Timeout": "2"}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            http.post, f"/_run/{DEV}/stream", json={"prompt": "late"}, headers=headers
        )
        _wait_for_jobs(http, 2)
        _advance(http, 2)
        answer = pending.result(timeout=10)
    assert answer.status_code == 504
    assert answer.headers["x-fal-request-timeout-type"] == "user"
    assert answer.json()["error_type"] == "request_timeout"


def test_official_fal_client_streams_uploads_and_speaks_realtime_over_tls(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.private_key_pem.write_to_path(str(key_file))
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    authority.cert_pem.write_to_path(str(ca_file))
    tls = ("--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file), "--instant")
    with running_server(*tls, scheme="https", ca_file=str(ca_file)) as base:
        host = base.removeprefix("https://")
        env = {
            **os.environ,
            "FAL_KEY": "fal-client-key",
            "FAL_QUEUE_RUN_HOST": host,
            "FAL_RUN_HOST": f"{host}/_run",
            "SSL_CERT_FILE": str(ca_file),
            "MOCK_BASE_URL": base,
        }
        script = Path(__file__).with_name("fal_client_surface_flow.py")
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=90
        )
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout.strip().splitlines()[-1])
    assert findings == {
        "streamed": [0.25, 0.5, 0.75, "streamed"],
        "async_last": "async",
        "cdn": "cdn bytes",
        "storage": "storage bytes",
        "realtime": [["over a token", 9], "after an error"],
        "refused": "VALIDATION_ERROR",
    }
