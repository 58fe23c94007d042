"""The official JavaScript client (@fal-ai/client from npm), unchanged, against a real server.

It is the only official client that follows the SSE status stream. Node and
npm are not part of the Python toolchain this project needs, so the test is
skipped (saying so) on a machine without them; CI machines have both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.server import ServerPool

pytestmark = pytest.mark.e2e
JS_DIR = Path(__file__).with_name("js")


@pytest.fixture(scope="module")
def node_project() -> Path:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are needed to run the official JS client")
    if not (JS_DIR / "node_modules" / "@fal-ai" / "client").is_dir():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    return JS_DIR


def test_official_js_client_polls_streams_cancels_and_runs(
    mock_servers: ServerPool, node_project: Path
) -> None:
    # Real time (the JS client cannot move a manual clock): the queue phase is long
    # enough for the stream to connect while IN_QUEUE even on a busy machine.
    base = mock_servers.get("--queue-seconds", "1.0", "--run-seconds", "0.4")
    done = subprocess.run(
        ["node", "flow.mjs"],
        cwd=node_project,
        env={**os.environ, "MOCK_BASE_URL": base},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout.strip().splitlines()[-1])
    assert findings["polled"] == ["COMPLETED", "IN_PROGRESS", "IN_QUEUE"]
    assert findings["polledImages"] == 2 and findings["polledRequestId"] == "string"
    assert findings["streamed"] == ["COMPLETED", "IN_PROGRESS", "IN_QUEUE"]
    # the JS client appends each event's logs: each line must arrive exactly once
    assert findings["streamedLogs"] == [
        "Loading model weights",
        "Running inference",
        "Decoding latents",
        "Uploading result",
    ]
    assert findings["streamedSeed"] == 11
    assert findings["statusBeforeCancel"] in ("IN_QUEUE", "IN_PROGRESS")
    assert findings["validation"] == {"status": 422, "loc": ["body", "prompt"]}
    assert findings["ranPrompt"] == "sync"


@pytest.mark.parametrize("profile", ["official", "intermediary"])
def test_official_js_client_beyond_the_queue_through_proxy_url(
    mock_servers: ServerPool, node_project: Path, profile: str
) -> None:
    base = mock_servers.get(
        "--clock", "manual", "--instant", "--runners", "1", "--profile", profile
    )
    # a browser app has no key (the proxy adds one); a server app sends its own
    # (the 91 MiB multipart upload runs once)
    key = {"FAL_CREDENTIALS": "js-key", "JS_MULTIPART": "1"} if profile == "official" else {}
    done = subprocess.run(
        ["node", "--experimental-websocket", "surface.mjs"],
        cwd=node_project,
        env={**os.environ, "MOCK_BASE_URL": base, **key},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout.strip().splitlines()[-1])
    assert findings["progress"] == [0.25, 0.5, 0.75]
    assert findings["streamedPrompt"] == findings["streamedDone"] == "streamed"
    assert (
        findings["streamError"]["status"] == 422 and len(findings["streamError"]["requestId"]) == 36
    )
    assert findings["uploadedText"] == "hello from js"
    assert findings["autoUploaded"] is True and findings["autoUploadedBytes"] == 4
    if profile == "official":
        assert findings["bigSame"] is True and findings["multipartParts"] == 10
    assert findings["deadline"] == {
        "status": 504,
        "requestId": findings["lateRequestId"],
        "timeoutType": "user",
    }
    assert findings["resultCalls"] == 1  # a user timeout is not retried
    assert findings["realtime"] == ["realtime", 6]
