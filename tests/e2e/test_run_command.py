"""`mockserver run` (the reference client from the shell) against a real server;
the command runs in this process (tests/e2e/command.py)."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e.command import run_command
from tests.e2e.server import ServerPool

pytestmark = pytest.mark.e2e


def _run(*args: str, key: str | None = "run-key") -> subprocess.CompletedProcess[str]:
    """`mockserver run ARGS` (in this process) with `key` as $FAL_KEY (None: unset)."""
    return run_command("run", *args, env={"FAL_KEY": key})


def test_run_follows_saves_and_reports(mock_servers: ServerPool, tmp_path: Path) -> None:
    # Real time: the queue phase must outlast the command's start on a busy
    # machine, or the first poll already sees IN_PROGRESS.
    base = mock_servers.get("--queue-seconds", "1.0", "--run-seconds", "0.2")
    done = _run(
        "fal-ai/flux-1/schnell",
        "--input",
        '{"prompt": "a fox", "num_images": 2, "image_size": "square"}',
        "--base-url",
        base,
        "--logs",
        "--save",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "IN_QUEUE" in done.stdout and "COMPLETED" in done.stdout
    assert "Loading model weights" in done.stdout
    saved = sorted(tmp_path.iterdir())
    assert len(saved) == 2
    assert Image.open(io.BytesIO(saved[0].read_bytes())).size == (512, 512)

    streamed = _run(
        "fal-ai/flux-1/dev",
        "--input",
        '{"prompt": "s", "seed": 5}',
        "--base-url",
        base,
        "--stream",
    )
    assert streamed.returncode == 0, streamed.stderr
    assert '"seed": 5' in streamed.stdout

    invalid = _run("fal-ai/flux-1/dev", "--base-url", base)
    assert invalid.returncode == 1
    assert invalid.stderr.startswith("mockserver run: error: invalid input (prompt)\n")
    assert "body.prompt: Field required [missing]" in invalid.stderr

    # A 422 for a prompt the model refuses is not an invalid input: say what it is.
    httpx.post(
        f"{base}/_mock/outcomes",
        json={"endpoint_id": "fal-ai/flux-1/dev", "outcome": {"kind": "model_error"}, "times": 1},
    ).raise_for_status()
    refused = _run("fal-ai/flux-1/dev", "--input", '{"prompt": "x"}', "--base-url", base)
    assert refused.returncode == 1
    want = "mockserver run: error: the model refused the input: content policy (prompt)"
    assert refused.stderr.splitlines()[0] == want
    assert "[content_policy_violation]" in refused.stderr

    missing_key = _run("fal-ai/flux-1/dev", "--base-url", base, key=None)
    assert missing_key.returncode == 2 and "$FAL_KEY" in missing_key.stderr


def test_run_against_the_intermediary_profile_never_prints_the_key(
    mock_servers: ServerPool,
) -> None:
    secret = "hk-very-secret-key"
    base = mock_servers.get("--profile", "intermediary", "--instant")
    done = _run(
        "fal-ai/flux-1/dev",
        "--input",
        json.dumps({"prompt": "x"}),
        "--base-url",
        base,
        "--auth-scheme",
        "bearer",
        key=secret,
    )
    assert done.returncode == 0, done.stderr
    wrong = _run("fal-ai/flux-1/dev", "--input", '{"prompt": "x"}', "--base-url", base, key=secret)
    assert wrong.returncode == 1 and "401" in wrong.stderr
    for output in (done.stdout, done.stderr, wrong.stdout, wrong.stderr):
        assert secret not in output
