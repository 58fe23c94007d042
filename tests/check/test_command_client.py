"""`mockserver check`'s HTTP client takes its timeouts from --request-timeout.

httpx's own default (5 s) equals the mock's stream keep-alive interval, so a
status stream of a job queued longer than that could fail as a ReadTimeout
although the server was fine (seen once in a full run).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.command import run_command
from tests.e2e.server import refused_port


@pytest.mark.parametrize("seconds", ["7", "42.5"])
def test_the_client_waits_as_long_as_request_timeout_says(
    monkeypatch: pytest.MonkeyPatch, seconds: str
) -> None:
    seen: list[httpx.Timeout] = []

    class Recording(httpx.AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen.append(self.timeout)

    monkeypatch.setattr(httpx, "AsyncClient", Recording)  # check.command uses httpx.AsyncClient
    with refused_port() as port:  # the run stops at "cannot connect": no traffic needed
        done = run_command(
            "check",
            "--base-url",
            f"http://127.0.0.1:{port}",
            "--request-timeout",
            seconds,
            env={"FAL_KEY": "k"},
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot connect" in done.stdout + done.stderr
    assert seen, "the check built no HTTP client"
    timeout = seen[0]
    assert timeout.read == timeout.connect == timeout.write == timeout.pool == float(seconds)
