"""The load command's parts that need no Locust: options, budget split, ledger, summary.

Nothing here imports Locust (it patches the standard library with gevent): the
command line parses and refuses bad options in this process, and the test checks
that Locust stayed out of it.
"""

from __future__ import annotations

import sys

import pytest

from mockserver.catalog import Catalog
from mockserver.check.results import CheckResult, Evidence, Verdict
from mockserver.check.upstream import CustomerJob, run_marker
from mockserver.cli import main
from mockserver.load.config import LoadConfig, parse_duration, split_budget
from mockserver.load.ledger import EXAMPLES, Ledger, merge
from mockserver.load.report import LoadSummary
from mockserver.load.session import Session, SetupError, takes_prompt
from mockserver.load.twosided import mask_examples
from mockserver.markers import marker_pattern
from mockserver.redact import fingerprint


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("2.5", 2.5), ("30s", 30), ("5m", 300), ("1h30m", 5400)]
)
def test_durations_take_seconds_or_locusts_form(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-3", "5x", "m", "1.5m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_the_budget_is_split_without_exceeding_it() -> None:
    assert split_budget(10, 3) == [4, 3, 3]
    assert split_budget(1, 2) == [1, 0]
    assert split_budget(None, 2) == [None, None]
    assert sum(share or 0 for share in split_budget(1001, 7)) == 1001


def test_the_config_crosses_the_wire_without_a_key() -> None:
    config = LoadConfig("http://127.0.0.1:1", ("fal-ai/flux-1/schnell",), budget=5)
    data = config.to_json()
    assert LoadConfig.from_json(data) == config
    assert not any("key" in name for name in data if name != "auth_scheme")


def _result(check: str, verdict: Verdict = Verdict.FAIL) -> CheckResult:
    evidence = Evidence("GET", "http://127.0.0.1:1/x", 404, '{"detail":"nope"}')
    return CheckResult("load", "fal-ai/flux-1/schnell", check, verdict, "why", (evidence,))


def test_the_ledger_counts_each_job_once_and_keeps_a_few_examples() -> None:
    ledger = Ledger(budget=3)
    assert [ledger.take_submit() for _ in range(4)] == [True, True, True, False]
    assert ledger.submitted == 3 and ledger.exhausted
    ledger.accepted = 2
    assert ledger.in_flight == 3
    ledger.ended("rejected")
    ledger.ended("delivered")
    ledger.lose("result-missing", _result("result"))
    ledger.ended("lost")
    assert ledger.in_flight == 0
    for _ in range(EXAMPLES + 2):
        ledger.judged(_result("status-order"))
    ledger.judged(_result("url-origin", Verdict.NOTE))
    ledger.judged(_result("result", Verdict.PASS))
    snapshot = ledger.snapshot()
    assert snapshot["failures"]["status-order"]["count"] == EXAMPLES + 2
    assert len(snapshot["failures"]["status-order"]["examples"]) == EXAMPLES
    assert snapshot["notes"]["url-origin"]["count"] == 1
    assert "result" not in snapshot["failures"]
    assert snapshot["lost"]["result-missing"]["count"] == 1
    with pytest.raises(ValueError, match="unknown kind"):
        ledger.lose("vanished", _result("result"))
    with pytest.raises(ValueError, match="unknown fate"):
        ledger.ended("vanished")


def test_workers_ledgers_merge_into_exact_totals() -> None:
    one, two = Ledger(budget=0), Ledger(budget=1)
    for ledger in (one, two):
        ledger.submitted = ledger.accepted = ledger.completed = 4
        for _ in range(3):
            ledger.ended("delivered")
        ledger.lose("never-completed", _result("completes"))
        ledger.ended("lost")
        ledger.judged(_result("completes"))
    merged = merge([one.snapshot(), two.snapshot()])
    assert merged["submitted"] == 8 and merged["delivered"] == 6 and merged["in_flight"] == 0
    assert merged["lost"]["never-completed"]["count"] == 2
    assert merged["failures"]["completes"]["count"] == 2
    assert not merged["exhausted"]  # the second worker may still submit
    assert merge([one.snapshot()])["exhausted"]


def test_the_summary_has_the_promised_top_level_counts() -> None:
    ledger = Ledger()
    ledger.submitted = ledger.accepted = ledger.completed = 2
    ledger.ended("delivered")
    ledger.lose("media-failed", _result("media-download"))
    ledger.ended("lost")
    ledger.judged(_result("media-download"))
    summary = LoadSummary("http://x", "Key", ["m"], 1, 1.0, 5.0, 5.0, 0, ledger.snapshot())
    data = summary.to_json()
    assert (data["jobs_submitted"], data["jobs_completed"]) == (2, 2)
    assert (data["failures"], data["lost_jobs"], data["ok"]) == (1, 1, False)
    assert data["lost_by_kind"]["media-failed"]["meaning"].startswith("a media file")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "3"], "--base-url is required"),
        (["--worker"], "--worker needs --master-host"),
        (["--base-url", "ftp://x"], "must be an http(s) URL"),
        (["--base-url", "http://127.0.0.1:1", "--master", "--worker"], "exclude each other"),
        (["--base-url", "http://127.0.0.1:1", "--stream-share", "2"], "between 0 and 1"),
        (["--base-url", "http://127.0.0.1:1", "--cancel-share", "-1"], "between 0 and 1"),
        (["--base-url", "http://127.0.0.1:1", "--upstream-control", "x"], "must be an http(s)"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["load", *args]) == 2
    assert message in capsys.readouterr().err
    assert "locust" not in sys.modules and "gevent" not in sys.modules


def test_bad_durations_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["load", "--base-url", "http://127.0.0.1:1", "--duration", "soon"])
    assert exit_info.value.code == 2
    assert "Locust's form" in capsys.readouterr().err


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["load", "--help"])
    text = capsys.readouterr().out
    for option in ("--users", "--spawn-rate", "--duration", "--auth-scheme", "--max-requests",
                   "--models", "--json", "--html", "--csv", "--master", "--worker",
                   "--master-host", "--upstream-control", "--cancel-share"):  # fmt: skip
        assert option in text
    assert "locust" not in sys.modules


def test_cancelled_jobs_end_once_and_records_are_handed_over_once() -> None:
    ledger = Ledger()
    ledger.submitted = ledger.accepted = 2
    ledger.ended("cancelled")
    ledger.ended("delivered")
    assert ledger.in_flight == 0 and ledger.snapshot()["cancelled"] == 1
    ledger.record(CustomerJob("run-x-a_1", "m", {"prompt": "p"}, accepted=True))
    ledger.halted = "not the mock"
    assert [job.marker for job in ledger.take_jobs()] == ["run-x-a_1"]
    assert ledger.take_jobs() == []
    job = CustomerJob("run-x-a_2", "m", {"seed": 1}, cancelled=True, leaks=["header x"])
    assert CustomerJob.from_json(job.to_json()) == job
    merged = merge([ledger.snapshot(), Ledger().snapshot()])
    assert merged["cancelled"] == 1 and merged["halted"] == "not the mock"


def test_a_two_sided_session_marks_each_job_and_cancels_an_exact_share() -> None:
    catalog = Catalog.load()
    prefix = run_marker()
    config = LoadConfig(
        "http://127.0.0.1:1",
        ("fal-ai/flux-1/schnell",),
        cancel_share=0.3,
        upstream_control="http://127.0.0.1:1/_mock",
        marker_prefix=prefix,
    )
    session = Session("customer-key", catalog)
    session.configure(config)
    markers = [session.next_marker() for _ in range(10)]
    assert len(set(markers)) == 10
    assert all(m and marker_pattern(prefix).fullmatch(m) for m in markers)
    assert sum(session.cancel_next() for _ in range(10)) == 3
    other = Session("customer-key", catalog)
    other.configure(config)
    assert other.next_marker() != markers[0]  # another worker: another tag
    no_prompt = [m.endpoint_id for m in catalog if not takes_prompt(m)]
    assert no_prompt, "the catalog has models without a prompt"
    with pytest.raises(SetupError, match="with a prompt"):
        Session("k", catalog).configure(
            LoadConfig("http://127.0.0.1:1", (no_prompt[0],), upstream_control="http://x",
                       marker_prefix=prefix)
        )  # fmt: skip
    assert Session("k", catalog).next_marker() is None  # not configured: no marker


def test_two_sided_failures_fail_the_summary_and_keys_are_masked() -> None:
    ledger = Ledger()
    ledger.submitted = ledger.accepted = ledger.completed = 1
    ledger.ended("delivered")
    leaked = Evidence("GET", "http://127.0.0.1:1/r", 200, '{"debug": "Key up-id:up-secret"}')
    ledger.judged(CheckResult("load", "m", "output-schema", Verdict.FAIL, "x", (leaked,)))
    snapshot = ledger.snapshot()
    mask_examples(snapshot, {fingerprint("up-secret")})
    assert "up-secret" not in str(snapshot) and "up-id" not in str(snapshot)
    failed = {"count": 2, "examples": []}
    two_sided = {"failures_by_check": {"forwarded-input": failed}, "notes_by_check": {}}
    summary = LoadSummary(
        "http://x", "Key", ["m"], 1, 1.0, 5.0, 5.0, 0, snapshot, two_sided=two_sided
    )
    data = summary.to_json()
    assert data["failures"] == 3 and not data["ok"]
    assert data["failures_by_check"]["forwarded-input"]["count"] == 2
    assert data["two_sided"] is two_sided
