"""`fal_server` / `fal_https_server`: the mock on a real port, for non-httpx clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from mockserver.testing import FalServer

FLOW = Path(__file__).resolve().parents[1] / "e2e" / "fal_client_flow.py"


def test_urllib_client_against_fal_server(fal_server: FalServer) -> None:
    request = urllib.request.Request(
        f"{fal_server.base_url}/fal-ai/flux-1/dev",
        data=json.dumps({"prompt": "stdlib"}).encode(),
        headers={**fal_server.headers, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        queued = json.load(response)
    with urllib.request.urlopen(
        urllib.request.Request(queued["response_url"], headers=fal_server.headers), timeout=10
    ) as response:
        assert json.load(response)["prompt"] == "stdlib"
    fal_server.assert_called("fal-ai/flux-1/dev")


def test_each_test_starts_from_a_clean_server(fal_server: FalServer) -> None:
    assert fal_server.requests == []
    assert fal_server.mock.engine.jobs() == []


@pytest.mark.e2e
def test_fal_client_in_a_subprocess_over_tls(fal_https_server: FalServer) -> None:
    env = {**os.environ, **fal_https_server.env}
    assert env["FAL_QUEUE_RUN_HOST"].startswith("127.0.0.1:")
    done = subprocess.run(
        [sys.executable, str(FLOW)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout.strip().splitlines()[-1])
    assert findings["first_images"] == 2 and findings["validation"] == 422
    fal_https_server.assert_called("fal-ai/flux-1/dev", times=3)


def test_realtime_over_fal_https_server(fal_https_server: FalServer) -> None:
    import ssl

    import msgpack  # type: ignore[import-untyped]
    from websockets.sync.client import connect

    host = fal_https_server.base_url.removeprefix("https://")
    context = ssl.create_default_context(cafile=fal_https_server.ca_file)
    url = f"wss://{host}/_run/fal-ai/flux-1/schnell/realtime"
    with connect(url, additional_headers=fal_https_server.headers, ssl=context) as ws:
        ws.send(msgpack.packb({"prompt": "over wss", "seed": 1}))
        answer = msgpack.unpackb(ws.recv(timeout=10))
    assert answer["prompt"] == "over wss" and answer["seed"] == 1
