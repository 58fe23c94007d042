"""Live mode on the surface beyond the queue: stream and storage checks, "not offered" notes."""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope, Send

from mockserver import ManualClock
from mockserver.catalog import Catalog
from mockserver.faults import Fault
from mockserver.http import json_response
from mockserver.outcomes import Outcome
from tests.check.helpers import make_mock, run_check

SCENARIOS = ("output-stream", "storage-upload")


def _verdicts(report: Any) -> dict[str, str]:
    return {r.check: r.verdict.value for r in report.results}


def _app(mock: Any) -> Any:
    from mockserver import create_app

    return create_app(mock)


def test_the_mock_passes_both(clock: ManualClock, catalog: Catalog) -> None:
    for profile, scheme in (("official", "Key"), ("intermediary", "Bearer")):
        report = run_check(
            _app(make_mock(profile, clock, catalog)),
            clock,
            catalog,
            scheme=scheme,
            scenarios=SCENARIOS,
        )
        assert _verdicts(report) == {
            "stream-answer": "pass",
            "stream-output": "pass",
            "stream-request-id": "pass",
            "upload-initiate": "pass",
            "upload-roundtrip": "pass",
        }, profile
        assert report.submits == 1  # the streamed run counts against --max-requests


def test_a_target_without_the_surface_gets_notes(clock: ManualClock, catalog: Catalog) -> None:
    mock = make_mock("official", clock, catalog)
    mock.add_fault(Fault(status_code=404, action="run_stream", times=None))
    inner = _app(mock)

    async def no_storage(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/storage/"):
            await json_response(404, {"detail": "Not Found"})(scope, receive, send)
            return
        await inner(scope, receive, send)

    report = run_check(no_storage, clock, catalog, scenarios=SCENARIOS)
    assert _verdicts(report) == {"stream-offered": "note", "upload-offered": "note"}
    assert all("not offered" in r.reason for r in report.results)


def test_wrong_streams_and_uploads_fail(clock: ManualClock, catalog: Catalog) -> None:
    inner = _app(make_mock("official", clock, catalog))

    async def deviant(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.endswith("/stream") and path.startswith("/_run/"):
            await json_response(200, {"not": "a stream"})(scope, receive, send)
            return
        if scope["type"] == "http" and path.startswith("/files/uploads/"):
            await json_response(200, {"other": "bytes"})(scope, receive, send)
            return
        await inner(scope, receive, send)

    report = run_check(deviant, clock, catalog, scenarios=SCENARIOS)
    verdicts = _verdicts(report)
    assert verdicts["stream-answer"] == "fail" and verdicts["upload-roundtrip"] == "fail"
    assert "text/event-stream" in report.by_check("stream-answer")[0].reason


def test_start_deadlines_pass_on_the_mock_and_catch_a_cut_off_run(
    clock: ManualClock, catalog: Catalog
) -> None:
    mock = make_mock("official", clock, catalog)
    report = run_check(_app(mock), clock, catalog, scenarios=("start-deadline",))
    assert _verdicts(report) == {"start-deadline": "pass"}
    assert "not cut off" in report.by_check("start-deadline")[0].reason
    # a server that limits the whole run: it ends a started run with a 504
    cutting = make_mock("official", clock, catalog)
    cutting.set_outcome("fal-ai/flux-1/dev", Outcome.infra_error("request_timeout"))
    report = run_check(_app(cutting), clock, catalog, scenarios=("start-deadline",))
    assert _verdicts(report) == {"start-deadline": "fail"}
    assert "cut off" in report.by_check("start-deadline")[0].reason
