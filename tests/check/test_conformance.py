"""The shipped scenarios pass against the mock, in both profiles."""

from __future__ import annotations

import json

import httpx
import pytest

from mockserver import ManualClock
from mockserver.catalog import Catalog
from mockserver.check.report import as_json, junit, markdown
from mockserver.check.scenarios import load_scenarios
from tests.check.helpers import (
    KEYS,
    SCENARIO_CHECKS,
    failures,
    mock_app,
    run_check,
    scheme_of,
    verdicts,
)


@pytest.mark.parametrize("profile", ["official", "intermediary"])
def test_every_scenario_passes_against_the_mock(
    profile: str, clock: ManualClock, catalog: Catalog
) -> None:
    app = mock_app(profile, clock, catalog)
    report = run_check(app, clock, catalog, scheme=scheme_of(profile))
    assert failures(report) == {}
    checked = {r.check for r in report.results}
    # every kind of check in the shipped scenarios actually ran
    assert checked >= SCENARIO_CHECKS | {"url-origin", "auth-scheme"}
    # each seed image endpoint ran the happy path
    happy = {r.endpoint for r in report.results if r.scenario == "happy-path"}
    assert happy == {m.endpoint_id for m in catalog if m.output == "images"}
    assert verdicts(report, "status-codes") >= {"pass"}
    assert verdicts(report, "cancel-queued") == {"pass"}
    assert verdicts(report, "cross-key-404") == {"pass"}
    if profile == "intermediary":
        assert verdicts(report, "url-origin") == {"note"}
        assert verdicts(report, "auth-scheme") == {"note"}
        note = report.by_check("url-origin")[0]
        assert "https://queue.fal.run" in note.reason and note.evidence
    else:
        assert {r.verdict.value for r in report.results} <= {"pass", "skip"}


def test_reports_never_show_the_keys(clock: ManualClock, catalog: Catalog) -> None:
    report = run_check(mock_app("official", clock, catalog), clock, catalog, scenarios=("auth",))
    texts = [as_json(report), junit(report), markdown(report), repr(report)]
    for text in texts:
        assert KEYS[0] not in text and KEYS[1] not in text
    data = json.loads(texts[0])
    assert data["ok"] is True and data["counts"]["pass"] == 3 and data["submits"] == 0


def test_the_cross_key_check_is_skipped_without_a_second_key(
    clock: ManualClock, catalog: Catalog
) -> None:
    report = run_check(
        mock_app("official", clock, catalog),
        clock,
        catalog,
        scenarios=("cross-key",),
        second_key=False,
    )
    [result] = report.by_check("cross-key-404")
    assert result.verdict.value == "skip" and "--second-key-env" in result.reason
    assert report.ok


def test_every_shipped_scenario_is_valid_and_runs_somewhere(catalog: Catalog) -> None:
    scenarios = load_scenarios()
    assert len(scenarios) >= 10
    for scenario in scenarios:
        assert scenario.endpoints(catalog), scenario.id


def test_only_submits_a_conforming_server_accepts_are_counted(
    clock: ManualClock, catalog: Catalog
) -> None:
    report = run_check(
        mock_app("official", clock, catalog),
        clock,
        catalog,
        scenarios=("auth", "invalid-input", "happy-path"),
        models=("fal-ai/flux-1/dev", "fal-ai/flux-1/schnell"),
    )
    assert report.ok
    assert report.submits == 2  # the two happy paths; refused submits cost nothing


def test_evidence_shows_json_and_names_binary_bodies() -> None:
    from mockserver.check.exchange import Exchange

    unlabelled = Exchange("GET", "http://x/r", 200, None, b'{"images": []}')
    assert unlabelled.evidence(()).excerpt == '{"images": []}'
    png = Exchange(
        "GET", "http://x/i.png", 200, httpx.Headers({"content-type": "image/png"}), b"\x89PNG"
    )
    assert png.evidence(()).excerpt == "<4 bytes of image/png>"
    raw = Exchange("GET", "http://x/b", 200, None, b"\xff\xd8\xff")
    assert raw.evidence(()).excerpt == "<3 bytes of binary data>"
