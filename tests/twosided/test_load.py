"""`mockserver load --upstream-control`: load -> reference intermediary -> mock, all served.

Short runs bounded by their submit budget (the duration is only a ceiling), all
at once: the faithful intermediary passes every two-sided check, one with four
faults at once has each reported, counted exactly, with evidence from both
sides, and a run whose jobs never reach the mock it reads halts.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mockserver import FalMock, MockConfig, create_app
from tests.e2e.server import ServerPool, serving_app
from tests.twosided.test_cli import CUSTOMERS, UPSTREAM_KEY, intermediary

pytestmark = pytest.mark.e2e

JOBS = 8
CANCEL_SHARE = 0.25  # exactly JOBS / 4 jobs are cancelled
RUN = [
    "--models", "fal-ai/flux-1/schnell", "--users", "3", "--spawn-rate", "3",
    "--think-time", "0", "--poll-interval", "0.05", "--timeout", "10",
    "--request-timeout", "10", "--duration", "20s", "--max-requests", str(JOBS),
    "--cancel-share", str(CANCEL_SHARE),
    # The reference intermediary answers a status stream with one JSON status:
    # a one-sided failure that is not what these runs are about.
    "--stream-share", "0", "--auth-scheme", "bearer", "--key-env", "CUSTOMER_KEY",
]  # fmt: skip


FAULTS = ("double_submit", "drop_param", "swallow_cancel", "leak_key")
# Exit code, output, --json summary, base URL, the --csv prefix.
Run = tuple[int, str, dict[str, Any], str, Path]


def _start(base: str, control: str, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CUSTOMER_KEY": CUSTOMERS[0], "COLUMNS": "200"}
    command = [sys.executable, "-m", "mockserver", "load", "--base-url", base]
    command += ["--upstream-control", control + "/_mock", *RUN, "--json", str(out)]
    command += ["--csv", str(out.with_suffix(""))]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture(scope="module")
def runs(mock_servers: ServerPool, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The runs at once against one mock (each counts only its own markers): the
    faithful intermediary's, the faulty one's, and one whose control URL is another
    mock than the intermediary's upstream (as if that still were fal)."""
    mock = mock_servers.get("--instant")
    folder = tmp_path_factory.mktemp("two-sided-load")
    with (
        intermediary(mock) as faithful,
        intermediary(mock, *FAULTS) as faulty,
        serving_app(create_app(FalMock(MockConfig(instant=True)))) as elsewhere,
    ):
        bases = {"faithful": faithful, "faulty": faulty, "elsewhere": faithful}
        controls = {"faithful": mock, "faulty": mock, "elsewhere": elsewhere}
        started = {
            name: _start(base, controls[name], folder / f"{name}.json")
            for name, base in bases.items()
        }
        done: dict[str, Run] = {}
        for name, process in started.items():
            output, _ = process.communicate(timeout=120)
            out = folder / f"{name}.json"
            assert out.exists(), output
            summary = json.loads(out.read_text())
            done[name] = (process.returncode, output, summary, bases[name], out.with_suffix(""))
    return done


def _no_secret(*texts: str) -> None:
    for secret in (UPSTREAM_KEY, *UPSTREAM_KEY.split(":"), *CUSTOMERS):
        assert all(secret not in text for text in texts), "a key reached the report"


def test_faithful_intermediary_passes_two_sided_load(runs: dict[str, Run]) -> None:
    code, output, summary, _, _ = runs["faithful"]
    assert code == 0, output
    two = summary["two_sided"]
    assert two["failures"] == 0 and summary["failures"] == 0 and summary["lost_jobs"] == 0
    checks = {name: (c["checked"], c["failed"]) for name, c in two["checks"].items()}
    cancels = int(JOBS * CANCEL_SHARE)
    assert checks == {
        "one-upstream-submit": (JOBS, 0),
        "forwarded-input": (JOBS, 0),
        "upstream-key": (JOBS, 0),
        "cancel-forwarded": (cancels, 0),
        "key-leak": (JOBS, 0),
        "customer-isolation": (JOBS - cancels, 0),
    }
    assert two["upstream"]["upstream_jobs_billed"] == JOBS == summary["jobs_accepted"]
    assert summary["jobs_cancelled"] == cancels
    assert "one-upstream-submit" in output and "OK: nothing failed" in output
    _no_secret(output, json.dumps(summary))


def test_faults_are_caught_by_the_two_sided_load_report(runs: dict[str, Run]) -> None:
    code, output, summary, base, prefix = runs["faulty"]
    assert code == 1, output
    assert "NOT OK" in output
    two = summary["two_sided"]
    cancels = int(JOBS * CANCEL_SHARE)
    failed = {name: c["failed"] for name, c in two["checks"].items()}
    assert failed == {
        "one-upstream-submit": JOBS,  # double_submit: each job billed twice
        "forwarded-input": JOBS,  # drop_param: seed never reached the upstream
        "upstream-key": 0,
        "cancel-forwarded": cancels,  # swallow_cancel
        "key-leak": JOBS,  # leak_key: in every submit answer's headers
        "customer-isolation": 0,
    }
    assert two["upstream"]["extra_billed"] == JOBS
    assert two["upstream"]["upstream_jobs_billed"] == 2 * JOBS
    # Evidence from both sides: the customer's answer, then what the upstream received.
    dropped = summary["failures_by_check"]["forwarded-input"]["examples"][0]
    assert "dropped seed" in dropped["reason"]
    customer, upstream = dropped["evidence"][:2]
    assert customer["url"].startswith(base) and upstream["url"].startswith("upstream /fal-ai/")
    assert '"seed"' not in upstream["excerpt"] and "[run-" in upstream["excerpt"]
    twice = summary["failures_by_check"]["one-upstream-submit"]["examples"][0]
    assert "2 upstream jobs" in twice["reason"]
    with Path(f"{prefix}_two_sided.csv").open(encoding="utf-8") as handle:
        rows = {row["check"]: row for row in csv.DictReader(handle)}
    assert rows["forwarded-input"]["failed"] == str(JOBS) and rows["upstream-key"]["failed"] == "0"
    assert "dropped seed" in rows["forwarded-input"]["first failure"]
    # The job whose seed was dropped is not mistaken for another job's result.
    assert summary["lost_jobs"] == 0
    assert summary["failures"] == sum(t["count"] for t in summary["failures_by_check"].values())
    _no_secret(output, json.dumps(summary))


def test_a_run_whose_jobs_do_not_reach_the_mock_halts(runs: dict[str, Run]) -> None:
    code, output, summary, _, _ = runs["elsewhere"]
    assert code == 1, output
    halted = summary["failures_by_check"]["upstream-is-mock"]
    assert halted["count"] >= 1 and "is the mock its upstream?" in halted["examples"][0]["reason"]
    assert summary["two_sided"]["halted"]
    # Only the jobs already under way when the first one was found out were sent.
    assert summary["jobs_submitted"] <= 3 < JOBS
