"""Non-conformant servers are caught by the named check, without crash or hang."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.catalog import Catalog
from mockserver.check import Checker, Report, Settings, Target, load_scenarios, plan
from mockserver.check.plan import billable
from mockserver.check.results import Verdict
from tests.check import deviants
from tests.check.helpers import (
    KEYS,
    REALTIME_CHECKS,
    SCENARIO_CHECKS,
    failures,
    make_mock,
    run_check,
)
from tests.e2e.server import refused_port, serving_app

Wrap = Callable[[Any], Any]


@pytest.mark.parametrize(
    ("wrap", "scenario", "check", "says"),
    [
        (deviants.full_path_urls, "happy-path", "url-shape", "/fal-ai/flux-1/dev/requests/"),
        (deviants.no_logs_key, "happy-path", "logs-key", "IN_PROGRESS without a `logs` key"),
        (deviants.ok_while_queued, "happy-path", "status-codes", "IN_QUEUE answered 200"),
        (deviants.drops_size_and_count, "parameter-fidelity", "num-images", "asked for 2"),
        (deviants.drops_size_and_count, "parameter-fidelity", "image-size", "asked for 512x384"),
        (deviants.wrong_size_media, "happy-path", "media-size", "the file is 64x64"),
        (deviants.no_detail_list, "invalid-input", "validation-422", "without a `detail` list"),
        (deviants.ok_for_unknown, "unknown-request", "unknown-id-404", "not 404"),
        (lambda app: deviants.one_tenant(app, KEYS[0]), "cross-key", "cross-key-404", "not 404"),
    ],
    ids=[
        "full-path-urls",
        "no-logs-key",
        "200-while-queued",
        "dropped-num-images",
        "dropped-image-size",
        "wrong-size-media",
        "no-detail-list",
        "200-for-unknown",
        "cross-key-reads",
    ],
)
def test_each_deviation_fails_its_check(
    wrap: Wrap, scenario: str, check: str, says: str, clock: ManualClock, catalog: Catalog
) -> None:
    app = wrap(create_app(make_mock("official", clock, catalog)))
    report = run_check(
        app,
        clock,
        catalog,
        scenarios=(scenario,),
        models=("fal-ai/flux-1/dev", "fal-ai/flux-1/schnell"),
    )
    failed = [r for r in report.by_check(check) if r.verdict is Verdict.FAIL]
    assert failed, f"{check} did not fail; failures: {failures(report)}"
    assert any(says in r.reason for r in failed), [r.reason for r in failed]
    assert all(r.evidence for r in failed)  # the finding comes with the exchange
    assert not report.ok


def test_the_same_scenarios_pass_on_the_unbroken_mock(clock: ManualClock, catalog: Catalog) -> None:
    # The control case for the table above: nothing fails without a deviation.
    app = create_app(make_mock("official", clock, catalog))
    scenarios = (
        "happy-path",
        "parameter-fidelity",
        "invalid-input",
        "unknown-request",
        "cross-key",
    )
    report = run_check(
        app,
        clock,
        catalog,
        scenarios=scenarios,
        models=("fal-ai/flux-1/dev", "fal-ai/flux-1/schnell"),
    )
    assert failures(report) == {}


# -- transport failures ---------------------------------------------------------------------


def _tiny(handler: Callable[[Request], Any]) -> Starlette:
    return Starlette(routes=[Route("/{path:path}", handler, methods=["GET", "POST", "PUT"])])


async def _text_ok(request: Request) -> Response:
    return Response("OK", media_type="text/plain")


async def _proxy_error(request: Request) -> Response:
    return Response(
        "<html><body><h1>502 Bad Gateway</h1></body></html>", 502, media_type="text/html"
    )


async def _never(request: Request) -> Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("handler", "says"),
    [
        (_text_ok, "non-JSON body (text/plain)"),
        (_proxy_error, "HTTP 502 with a non-JSON body (text/html)"),
    ],
    ids=["non-json", "html-error-page"],
)
def test_transport_failures_are_failed_checks(
    handler: Callable[[Request], Any], says: str, clock: ManualClock, catalog: Catalog
) -> None:
    report = run_check(
        _tiny(handler),
        clock,
        catalog,
        scenarios=("happy-path",),
        models=("fal-ai/flux-1/dev",),
        settings=Settings(request_timeout=5.0),
    )
    [submit] = report.by_check("submit-accepted")
    assert submit.verdict is Verdict.FAIL and says in submit.reason
    # later steps are reported as not run, not as crashes
    [skipped] = report.by_check("not-run")
    assert skipped.verdict is Verdict.SKIP
    assert skipped.reason == "wait, result, media not run: the submit was not accepted"


def test_in_queue_without_logs_is_what_fal_documents(clock: ManualClock, catalog: Catalog) -> None:
    # fal's IN_QUEUE example has no `logs` and the Python client reads it only
    # for IN_PROGRESS and COMPLETED: nothing breaks, nothing fails.
    app = deviants.no_logs_while_queued(create_app(make_mock("official", clock, catalog)))
    report = run_check(
        app, clock, catalog, scenarios=("happy-path",), models=("fal-ai/flux-1/dev",)
    )
    assert failures(report) == {}
    assert {r.verdict for r in report.by_check("logs-key")} == {Verdict.PASS}


def test_a_server_that_never_answers_stops_the_run_at_once(
    clock: ManualClock, catalog: Catalog
) -> None:
    report = run_check(
        _tiny(_never),
        clock,
        catalog,
        scenarios=("happy-path", "unknown-request", "auth"),
        settings=Settings(request_timeout=5.0),
    )
    [stop] = report.by_check("reachable")
    assert stop.verdict is Verdict.FAIL and stop.reason.startswith("no answer from")
    assert [r.check for r in report.results if r.verdict is Verdict.FAIL] == ["reachable"]
    assert {r.reason for r in report.by_check("not-run")} == {
        "the run stopped at once (reachable failed)"
    }
    assert report.submits == 0


def test_a_refused_connection_stops_the_run_with_one_finding(catalog: Catalog) -> None:
    scenarios = [s for s in load_scenarios() if s.id in ("happy-path", "unknown-request")]

    async def go(target: Target) -> Report:
        async with httpx.AsyncClient() as client:
            planned = plan(scenarios, list(catalog), None)
            return await Checker(target, client).run(planned)

    with refused_port() as port:
        base = f"http://127.0.0.1:{port}"
        report = asyncio.run(go(Target(base, KEYS[0])))
    failed = [r for r in report.results if r.verdict is Verdict.FAIL]
    assert [r.check for r in failed] == ["reachable"]
    assert failed[0].reason.startswith(f"cannot connect to {base}: connection failed")
    assert report.submits == 0


def test_a_stream_that_never_closes_is_decided_by_the_grace_not_the_job_timeout(
    catalog: Catalog,
) -> None:
    mock = FalMock(MockConfig(instant=True, keys=frozenset(KEYS)), catalog=catalog)
    [stream] = [s for s in load_scenarios() if s.id == "status-stream"]
    with serving_app(deviants.endless_stream(create_app(mock))) as base:

        async def go() -> Report:
            async with httpx.AsyncClient() as client:
                planned = plan([stream], [catalog.get("fal-ai/flux-1/schnell")], None)  # type: ignore[list-item]
                # A job timeout far longer than the test may take: the grace decides.
                settings = Settings(job_timeout=600.0, request_timeout=600.0, stream_grace=0.3)
                return await Checker(Target(base, KEYS[0]), client, settings=settings).run(planned)

        report = asyncio.run(go())
    [closes] = report.by_check("stream-closes")
    assert closes.verdict is Verdict.FAIL
    assert closes.reason == "still open 0.3 s after COMPLETED (fal closes the stream)"
    assert report.seconds < 60


# -- a server written from fal's documentation, not from the mock ---------------------------


def test_a_server_following_fals_documentation_has_no_failures(
    clock: ManualClock, catalog: Catalog
) -> None:
    from tests.check.documented_server import MODELS, documented_server

    app = documented_server(frozenset(KEYS), clock.now, pause=lambda: asyncio.sleep(0))
    report = run_check(app, clock, catalog, models=MODELS)
    assert failures(report) == {}
    ran = {r.check for r in report.results if r.verdict is not Verdict.SKIP}
    assert ran >= SCENARIO_CHECKS - REALTIME_CHECKS
    # It offers no realtime (fal documents it apart from the queue): a note, and
    # the input that would have run is not billed.
    assert {r.verdict for r in report.by_check("realtime-offered")} == {Verdict.NOTE}
    models = [model for model in catalog if model.endpoint_id in MODELS]
    realtime = [s for s in load_scenarios() if s.id == "realtime"]
    unbilled = billable(plan(realtime, models, None))
    assert report.submits == billable(plan(load_scenarios(), models, None)) - unbilled
