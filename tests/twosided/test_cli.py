"""`mockserver check --upstream-control` against served processes: mock <- intermediary <- check."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ServerPool, free_port
from tests.twosided.intermediary import __file__ as INTERMEDIARY

pytestmark = pytest.mark.e2e

UPSTREAM_KEY = "upstream-cli-key"
CUSTOMERS = ("cli-customer-one", "cli-customer-two")


@contextlib.contextmanager
def intermediary(upstream: str, *faults: str) -> Iterator[str]:
    """The reference intermediary as a process in front of `upstream`; its base URL."""
    port = free_port()
    args = [arg for fault in faults for arg in ("--fault", fault)]
    env = {**os.environ, "UPSTREAM_KEY": UPSTREAM_KEY, "CUSTOMER_KEYS": ",".join(CUSTOMERS)}
    process = subprocess.Popen(
        [sys.executable, INTERMEDIARY, "--upstream", upstream, "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):  # polling a starting process: the one wait here
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            with contextlib.suppress(httpx.TransportError):
                httpx.get(base + "/", timeout=1)
                break
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def _check(base: str, control: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FAL_KEY"}
    env.update(FAL_KEY=CUSTOMERS[0], SECOND_KEY=CUSTOMERS[1], COLUMNS="160")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mockserver",
            "check",
            "--base-url",
            base,
            "--auth-scheme",
            "bearer",
            "--second-key-env",
            "SECOND_KEY",
            "--upstream-control",
            control,
            "--scenarios",
            "happy-path",
            "--models",
            "fal-ai/flux-1/schnell",
            "--poll-interval",
            "0.1",
            "--timeout",
            "30",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )


def test_two_sided_check_from_the_command_line(tmp_path: Path, mock_servers: ServerPool) -> None:
    mock = mock_servers.get("--instant")  # shared with other tests, reset for this one
    with intermediary(mock) as base:
        done = _check(base, mock + "/_mock", "--json", str(tmp_path / "r.json"))
    billed = httpx.get(f"{mock}/_mock/requests", params={"action": "submit"}).json()
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "CONFORMS" in output and "0 fail" in output
    report = json.loads((tmp_path / "r.json").read_text())
    checks = {r["check"]: r["verdict"] for r in report["results"]}
    for check in ("one-upstream-submit", "forwarded-input", "key-leak", "customer-isolation"):
        assert checks[check] == "pass", check
    assert checks["outcome-slow"] == "pass"
    assert checks["outcome-expired"] == "skip"  # needs the mock on a manual clock
    # Every billable submit the check made (its own and the two-sided ones) reached the mock.
    assert report["submits"] == len([r for r in billed if r["status_code"] == 200])
    assert all(key not in output for key in (UPSTREAM_KEY, *CUSTOMERS))
