"""The protocol's rules as plain functions, and the one definition of each step kind."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from mockserver.catalog import Catalog
from mockserver.check import judge
from mockserver.check.exchange import Exchange
from mockserver.check.plan import plan
from mockserver.check.results import Verdict
from mockserver.check.scenarios import load_scenarios, scenario_schema
from mockserver.check.steps import STEP_KINDS

STATUS = "http://q.test/fal-ai/flux-1/requests/r1/status"


def _answer(status_code: int, body: object, **headers: str) -> Exchange:
    return Exchange("GET", STATUS, status_code, headers, json.dumps(body).encode())


def test_judging_needs_no_event_loop_and_no_http_library() -> None:
    # What a Locust user does: judge exchanges captured with another client, in
    # plain synchronous code, headers in a plain dict.
    answer = Exchange(
        "POST", "http://q/x", 200, {"Content-Type": "application/json"}, b'{"request_id": "r"}'
    )
    assert judge.submit.accepted(answer).verdict is Verdict.PASS
    # ...and the rules' modules neither send requests nor wait on an event loop.
    check = Path(judge.__file__).parent.parent
    modules = [*check.joinpath("judge").glob("*.py")]
    modules += [check / name for name in ("exchange.py", "findings.py", "results.py")]
    for path in modules:
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert not imported & {"asyncio", "httpx", "anyio"}, path


def test_in_queue_without_logs_passes_in_progress_without_logs_fails() -> None:
    queued = _answer(202, {"status": "IN_QUEUE", "queue_position": 0})  # fal's documented shape
    running = _answer(202, {"status": "IN_PROGRESS", "logs": []})
    done = _answer(200, {"status": "COMPLETED", "logs": []})
    findings = {f.check: f for f in judge.status.polls([queued, running, done], logs=True)}
    assert {f.verdict for f in findings.values()} == {Verdict.PASS}
    bare = _answer(202, {"status": "IN_PROGRESS"})
    findings = {f.check: f for f in judge.status.polls([queued, bare, done], logs=True)}
    assert findings["logs-key"].verdict is Verdict.FAIL
    assert findings["logs-key"].reason == "IN_PROGRESS without a `logs` key (clients read it)"
    assert findings["logs-key"].exchanges == (bare,)


def test_headers_are_looked_up_in_any_case() -> None:
    answer = _answer(200, {}, **{"X-Fal-Request-Id": "other"})
    finding = judge.output.result(answer, "r1")
    assert finding.verdict is Verdict.FAIL and "'other'" in finding.reason


def test_an_accepted_wrong_key_is_a_note_and_a_server_error_a_failure() -> None:
    accepted = Exchange("POST", "http://q/x", 200, {}, b'{"request_id": "r"}')
    assert judge.submit.auth("wrong-key", accepted).verdict is Verdict.NOTE
    refused = Exchange("POST", "http://q/x", 401, {}, b'{"detail": "no"}')
    assert judge.submit.auth("wrong-key", refused).verdict is Verdict.PASS
    crashed = Exchange("POST", "http://q/x", 500, {}, b"boom")
    assert judge.submit.auth("wrong-key", crashed).verdict is Verdict.FAIL


def test_every_step_kind_is_defined_once_and_the_schema_takes_them_from_there() -> None:
    schema = scenario_schema()
    assert set(schema["properties"]["steps"]["items"]["properties"]) == set(STEP_KINDS)
    used = {step.kind for scenario in load_scenarios() for step in scenario.steps}
    assert used == set(STEP_KINDS)  # every kind is exercised by a shipped scenario


def test_the_plan_describes_every_step_and_counts_what_a_run_spends(catalog: Catalog) -> None:
    planned = plan(load_scenarios(), list(catalog), None)
    for item in planned:
        lines = item.describe("http://q.test")
        assert len(lines) >= len(item.scenario.steps), item.label
    # without a receiver the webhook scenario does not run, so it costs nothing
    [webhook] = [p for p in planned if p.scenario.id == "webhook"]
    assert webhook.skip is not None and "--webhook-listen" in webhook.skip.reason
    with_receiver = plan(load_scenarios(), list(catalog), None, receiver=True)
    assert all(p.runs for p in with_receiver)


def test_a_webhook_without_gateway_request_id_is_a_note() -> None:
    evidence = Exchange("POST", "http://receiver/hook")
    good = json.dumps({"request_id": "r", "gateway_request_id": "g", "status": "OK"}).encode()
    assert judge.webhook.gateway_id(good, evidence).verdict is Verdict.PASS
    missing = judge.webhook.gateway_id(b'{"request_id": "r", "status": "OK"}', evidence)
    assert missing.verdict is Verdict.NOTE and "None" in missing.reason
    assert judge.webhook.gateway_id(b"not json", evidence).verdict is Verdict.NOTE
