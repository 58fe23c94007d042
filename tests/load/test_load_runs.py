"""`mockserver load` runs (Locust in subprocesses, never in this process) on 127.0.0.1:
the mock holds the load, each deliberately broken server is reported with the exact
count of what it broke, and one master drives two workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mockserver import FalMock, MockConfig, create_app
from tests.e2e.server import ServerPool, free_port, serving_app
from tests.load.breaker import Breaker

pytestmark = pytest.mark.e2e

MODEL = "fal-ai/flux-1/schnell"
# Small and quick: the budget ends each run long before --duration does.
JOBS = 12
FAST = [
    "--models", MODEL, "--users", "4", "--spawn-rate", "4", "--think-time", "0",
    "--poll-interval", "0.05", "--timeout", "10", "--request-timeout", "10",
    "--progress-interval", "1",
]  # fmt: skip
RUN_TIMEOUT = 100


def _load(*args: str, wait: bool = True) -> Any:
    env = {**os.environ, "LOAD_KEY": "load-secret-key", "COLUMNS": "160"}
    command = [sys.executable, "-m", "mockserver", "load", "--key-env", "LOAD_KEY", *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def _summary(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture
def mock_url(mock_servers: ServerPool) -> str:
    """A clean `mockserver serve --instant` (the session's shared process)."""
    return mock_servers.get("--instant")


@pytest.fixture
def broken_url() -> Iterator[tuple[Breaker, str]]:
    breaker = Breaker(create_app(FalMock(MockConfig(instant=True))))
    with serving_app(breaker) as base:
        yield breaker, base


def test_the_mock_holds_the_load(mock_url: str, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    done = _load(
        "--base-url", mock_url, *FAST, "--duration", "15s", "--max-requests", str(JOBS),
        "--json", str(out), "--html", str(tmp_path / "r.html"), "--csv", str(tmp_path / "r"),
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    summary = _summary(out)
    assert summary["jobs_submitted"] == JOBS and summary["jobs_completed"] == JOBS
    assert summary["failures"] == 0 and summary["lost_jobs"] == 0
    assert summary["jobs_delivered"] == JOBS
    # Every step was measured, and both ways of waiting were used or at least one.
    assert {"submit", "result", "media", "time to complete"} <= summary["steps"].keys()
    assert {"status", "stream"} & summary["steps"].keys()
    assert "OK: nothing failed, nothing lost" in output
    assert "jobs" in output and "in flight" in output  # progress while it ran
    assert "<html" in (tmp_path / "r.html").read_text().lower()
    assert "submit" in (tmp_path / "r_stats.csv").read_text()
    assert "load-secret-key" not in output + out.read_text()


def test_a_broken_server_is_reported_exactly(
    broken_url: tuple[Breaker, str], tmp_path: Path
) -> None:
    breaker, base = broken_url
    jobs = 18
    out = tmp_path / "load.json"
    done = _load(
        "--base-url", base, *FAST, "--duration", "15s", "--max-requests", str(jobs),
        "--timeout", "2", "--json", str(out),
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "NOT OK" in output
    summary = _summary(out)
    broken = breaker.broken
    # Each fault happened, and is reported exactly as often as the server committed it.
    faults = ("dropped", "crossed", "media", "limited", "disordered", "stuck")
    assert min(broken[fault] for fault in faults) >= 1, broken
    failed = {name: tally["count"] for name, tally in summary["failures_by_check"].items()}
    assert failed.pop("rate-limited") == broken["limited"]
    assert failed.pop("status-order", 0) + failed.pop("stream-events", 0) == (
        broken["disordered"] + broken["stuck-streams"]
    )
    assert failed.pop("completes") == broken["stuck"]
    assert failed.pop("result") == broken["dropped"] + broken["crossed"]
    assert failed.pop("media-download") == broken["media"]
    assert failed == {}, "nothing else was reported"
    lost = {kind: tally["count"] for kind, tally in summary["lost_by_kind"].items()}
    assert lost == {
        "never-completed": broken["stuck"],
        "result-missing": broken["dropped"],
        "result-crossed": broken["crossed"],
        "media-failed": broken["media"],
    }
    assert summary["lost_jobs"] == sum(lost.values())
    assert summary["jobs_submitted"] == summary["jobs_accepted"] == jobs
    assert summary["jobs_completed"] == jobs - broken["stuck"]
    assert summary["jobs_delivered"] == jobs - summary["lost_jobs"]
    crossed = summary["lost_by_kind"]["result-crossed"]["examples"][0]
    assert "X-Fal-Request-Id" in crossed["reason"] and crossed["evidence"][0]["status_code"] == 200
    assert summary["failures"] == sum(t["count"] for t in summary["failures_by_check"].values())


def test_one_master_drives_two_workers(mock_servers: ServerPool, tmp_path: Path) -> None:
    # The intermediary profile: Bearer auth, and queue.fal.run URLs the users rewrite.
    mock_url = mock_servers.get("--profile", "intermediary", "--instant")
    port = str(free_port())
    workers = [
        _load("--worker", "--master-host", "127.0.0.1", "--master-port", port, wait=False)
        for _ in range(2)
    ]
    try:
        out = tmp_path / "load.json"
        done = _load(
            "--base-url", mock_url, *FAST, "--duration", "15s", "--max-requests", "20",
            "--master", "--expect-workers", "2", "--expect-workers-timeout", "60",
            "--master-port", port, "--auth-scheme", "bearer", "--json", str(out),
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        summary = _summary(out)
        assert summary["run"]["workers"] == 2
        assert summary["jobs_submitted"] == 20 and summary["jobs_completed"] == 20
        assert summary["failures"] == 0 and summary["lost_jobs"] == 0
        assert summary["notes_by_check"]["url-origin"]["count"] == 20  # rewritten, noted
        for worker in workers:  # the master tells its workers to quit
            assert worker.wait(timeout=30) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            if worker.stdout:
                worker.stdout.close()
