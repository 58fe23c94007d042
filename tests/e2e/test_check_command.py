"""`mockserver check` against `mockserver serve` processes on 127.0.0.1.

The command runs in this process (tests/e2e/command.py: its parsing, run,
reports and exit code, over real sockets); the Ctrl-C test runs it as a process,
the one place a signal has to reach it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from tests.e2e.command import run_command
from tests.e2e.server import ServerPool, free_port, refused_port

pytestmark = pytest.mark.e2e

KEYS = {"CHECK_KEY": "check-secret-one", "CHECK_KEY_2": "check-secret-two"}
SERVE = ["--keys-env", "SERVE_KEYS", "--queue-seconds", "0.3", "--run-seconds", "0.3"]
SERVE_ENV = {"SERVE_KEYS": ",".join(KEYS.values())}
FAST = ["--poll-interval", "0.1", "--timeout", "30", "--key-env", "CHECK_KEY"]


def _check(*args: str, keys: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mockserver check ARGS` with only `keys` (default: KEYS) set of the keys it could read."""
    env: dict[str, str | None] = dict.fromkeys((*KEYS, "FAL_KEY"))
    env.update(KEYS if keys is None else keys)
    env["COLUMNS"] = "160"
    return run_command("check", *args, env=env)


@pytest.mark.parametrize(("profile", "scheme"), [("official", "key"), ("intermediary", "bearer")])
def test_the_mock_conforms_in_each_profile(
    mock_servers: ServerPool, profile: str, scheme: str, tmp_path: Path
) -> None:
    base = mock_servers.get("--profile", profile, *SERVE, env=SERVE_ENV)
    done = _check(
        "--base-url",
        base,
        "--auth-scheme",
        scheme,
        "--second-key-env",
        "CHECK_KEY_2",
        *FAST,
        "--json",
        str(tmp_path / "r.json"),
        "--junit",
        str(tmp_path / "r.xml"),
        "--markdown",
        str(tmp_path / "r.md"),
    )
    dry = _check("--base-url", base, "--auth-scheme", scheme, "--dry-run", keys={})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "CONFORMS" in output and "0 fail" in output
    report = json.loads((tmp_path / "r.json").read_text())
    # the plan's count is what the run spends
    assert f", {report['submits']} billable submits (limit 40;" in dry.stdout, dry.stdout
    assert report["ok"] is True and report["counts"]["fail"] == 0
    assert report["submits"] <= 40  # the default spending guard
    notes = {r["check"] for r in report["results"] if r["verdict"] == "note"}
    if profile == "intermediary":
        assert notes == {"url-origin", "auth-scheme"}
        assert "NOTE url-origin" in output and "https://queue.fal.run" in output
    else:
        assert notes == set()
    verdicts = {r["check"]: r["verdict"] for r in report["results"]}
    # realtime over a real WebSocket, as the command opens it; the gateway id on submit
    assert verdicts["realtime-roundtrip"] == verdicts["realtime-output"] == "pass"
    assert verdicts["gateway-request-id"] == "pass"
    suites = ET.parse(tmp_path / "r.xml").getroot()
    assert sum(int(s.get("failures", "0")) for s in suites) == 0
    assert int(suites[0].get("tests", "0")) > 0
    markdown = (tmp_path / "r.md").read_text()
    assert markdown.startswith(f"# fal queue protocol check of {base}")
    for text in (
        output,
        markdown,
        (tmp_path / "r.json").read_text(),
        (tmp_path / "r.xml").read_text(),
    ):
        assert not any(key in text for key in KEYS.values())


def _help_example() -> list[str]:
    """The `FAL_KEY=k mockserver check --base-url URL` line of `check --help`, as arguments."""
    from mockserver.check.command import EPILOG

    [line] = [
        line.strip()
        for line in EPILOG.splitlines()
        if line.strip().startswith("FAL_KEY=k mockserver check")
    ]
    return line.split()[3:]


def test_the_help_example_passes_against_a_default_serve(
    mock_servers: ServerPool, tmp_path: Path
) -> None:
    # `serve` without --keys-env takes any key, so it cannot refuse a wrong one:
    # no client breaks over that, so it is a note (a hole only for a public server).
    args = _help_example()
    assert args[:2] == ["--base-url", "http://127.0.0.1:8000"], args
    base = mock_servers.get("--queue-seconds", "0.2", "--run-seconds", "0.2")
    report = tmp_path / "r.json"
    done = _check("--base-url", base, *args[2:], "--json", str(report), keys={"FAL_KEY": "k"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CONFORMS" in done.stdout and "NOTE auth-wrong-key: accepted a request" in done.stdout
    results = json.loads(report.read_text())["results"]
    assert {r["check"] for r in results if r["verdict"] == "note"} == {"auth-wrong-key"}


def test_a_wrong_scheme_is_said_once_first_and_stops_the_run(
    mock_servers: ServerPool, tmp_path: Path
) -> None:
    base = mock_servers.get("--profile", "intermediary", *SERVE, env=SERVE_ENV)
    done = _check("--base-url", base, *FAST, "--json", str(tmp_path / "r.json"))
    jobs = httpx.get(f"{base}/_mock/jobs").json()
    assert done.returncode == 1, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert "FAIL" in first and "key-accepted: the key was refused" in first, first
    assert "is the scheme bearer (--auth-scheme bearer)" in first
    assert done.stdout.count("FAIL") == 2  # the line as it happened, and in the summary
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["submits"] == 0 and jobs == []
    assert "0 billable submits" in done.stdout


def test_a_wrong_key_is_said_once_first(mock_servers: ServerPool) -> None:
    base = mock_servers.get(*SERVE, env=SERVE_ENV)
    done = _check("--base-url", base, *FAST, keys={"CHECK_KEY": "not-a-served-key"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "key-accepted: the key was refused" in done.stdout.splitlines()[0]
    assert "not-a-served-key" not in done.stdout + done.stderr


def test_dry_run_lists_and_sends_nothing(mock_servers: ServerPool) -> None:
    base = mock_servers.get("--instant")
    done = _check(
        "--base-url",
        base,
        "--dry-run",
        "--scenarios",
        "happy-path",
        "--models",
        "fal-ai/flux-1/*",
        keys={},
    )
    sent = httpx.get(f"{base}/_mock/requests").json()
    assert done.returncode == 0, done.stderr
    assert f"POST {base}/fal-ai/flux-1/dev" in done.stdout
    assert "billable submits" in done.stdout and "nothing was sent" in done.stdout
    assert "fal-ai/flux-pro" not in done.stdout
    assert sent == []


def test_max_requests_caps_billable_submits(mock_servers: ServerPool) -> None:
    base = mock_servers.get("--instant", *SERVE, env=SERVE_ENV)
    done = _check(
        "--base-url",
        base,
        *FAST,
        "--scenarios",
        "happy-path",
        "--max-requests",
        "3",
    )
    submits = [r for r in httpx.get(f"{base}/_mock/requests").json() if r["action"] == "submit"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(submits) == 3
    assert "SKIP budget: not run: over --max-requests (3)" in done.stdout


def test_usage_errors_exit_2() -> None:
    no_key = _check("--base-url", "http://127.0.0.1:9", keys={})
    assert no_key.returncode == 2 and "set the key in $FAL_KEY" in no_key.stderr
    bad_url = _check("--base-url", "ftp://x")
    assert bad_url.returncode == 2 and "--base-url must be an http(s) URL" in bad_url.stderr
    unknown = _check("--base-url", "http://127.0.0.1:9", "--scenarios", "nope", *FAST)
    assert unknown.returncode == 2 and "no scenario matches nope" in unknown.stderr


def test_a_refused_connection_is_said_once_and_stops_the_run() -> None:
    with refused_port() as port:
        base = f"http://127.0.0.1:{port}"
        done = _check("--base-url", base, *FAST)
    assert done.returncode == 1
    first = done.stdout.splitlines()[0]
    assert f"reachable: cannot connect to {base}: connection failed" in first, first
    assert done.stdout.count("FAIL") == 2 and "Traceback" not in done.stdout + done.stderr
    assert "0 billable submits" in done.stdout


def test_ctrl_c_writes_a_partial_report_and_cancels_submitted_jobs(
    mock_servers: ServerPool, tmp_path: Path
) -> None:
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if k != "FAL_KEY"}
    env.update(KEYS, COLUMNS="160")
    report = tmp_path / "r.json"
    base = mock_servers.get("--keys-env", "SERVE_KEYS", "--queue-seconds", "600", env=SERVE_ENV)
    command = [sys.executable, "-m", "mockserver", "check", "--base-url", base, *FAST]
    command += ["--scenarios", "happy-path", "--concurrency", "2", "--json", str(report)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 60

    def polled() -> set[str]:
        """Requests whose submit answer the checker has seen (it polls them)."""
        polls = httpx.get(f"{base}/_mock/requests", params={"action": "status"}).json()
        return {p.get("request_id") for p in polls}

    while len(polled()) < 2:  # a process starting up: the one wait there is
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    jobs = httpx.get(f"{base}/_mock/jobs").json()
    assert process.returncode == 130, out + err
    assert "interrupted; the report is partial" in err and "Traceback" not in out + err
    data = json.loads(report.read_text())
    assert data["interrupted"] is True and data["cancelled"] >= 1
    assert jobs and all(job["cancelled"] for job in jobs), jobs


# -- the optional webhook check ------------------------------------------------------------


def _webhook_check(base: str, *extra: str) -> subprocess.CompletedProcess[str]:
    port = free_port()
    return _check(
        "--base-url",
        base,
        *FAST,
        "--scenarios",
        "webhook",
        "--webhook-listen",
        f"127.0.0.1:{port}",
        *extra,
    )


def test_the_webhook_check_passes_against_the_mock(
    mock_servers: ServerPool, tmp_path: Path
) -> None:
    base = mock_servers.get("--instant", *SERVE, env=SERVE_ENV)
    done = _webhook_check(
        base,
        "--webhook-jwks-url",
        f"{base}/.well-known/jwks.json",
        "--json",
        str(tmp_path / "r.json"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    verdicts = {r["check"]: r["verdict"] for r in results}
    assert verdicts["webhook-delivered"] == "pass"
    assert verdicts["webhook-body"] == "pass"
    assert verdicts["webhook-gateway-request-id"] == "pass"
    assert verdicts["webhook-signature"] == "pass"


def test_a_server_that_never_calls_back_fails_webhook_delivered(mock_servers: ServerPool) -> None:
    # This mock may only call 10.0.0.0/8: the receiver on loopback never hears from it.
    args = ("--instant", "--webhook-allow", "10.0.0.0/8", *SERVE)
    base = mock_servers.get(*args, env=SERVE_ENV)
    done = _webhook_check(base, "--timeout", "1")
    assert done.returncode == 1
    assert "FAIL webhook-delivered: no webhook reached" in done.stdout


def test_a_signature_from_other_keys_fails_webhook_signature(mock_servers: ServerPool) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from mockserver.webhooks import WebhookSigner
    from tests.e2e.server import serving_app

    other = WebhookSigner().jwks()
    keys_app = Starlette(routes=[Route("/jwks.json", lambda r: JSONResponse(other))])
    base = mock_servers.get("--instant", *SERVE, env=SERVE_ENV)
    with serving_app(keys_app) as keys:
        done = _webhook_check(base, "--webhook-jwks-url", f"{keys}/jwks.json")
    assert done.returncode == 1
    assert "FAIL webhook-signature: does not verify with the keys at" in done.stdout


def test_without_a_receiver_the_webhook_check_is_skipped(mock_servers: ServerPool) -> None:
    base = mock_servers.get("--instant", *SERVE, env=SERVE_ENV)
    done = _check("--base-url", base, *FAST, "--scenarios", "webhook")
    assert done.returncode == 0
    assert "needs a webhook receiver (--webhook-listen; off by default)" in done.stdout
    assert _check("--base-url", base, "--webhook-url", "http://x").returncode == 2
