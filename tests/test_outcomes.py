"""Scripted outcomes: model errors, infrastructure errors, slow runs."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mockserver import FalMock, ManualClock, Outcome
from tests.conftest import DEV, path_of, submit


def test_model_error_content_policy(client: TestClient, mock: FalMock, clock: ManualClock) -> None:
    mock.next_outcome(DEV, Outcome.model_error())
    failed = submit(client)
    ok = submit(client)
    clock.advance(10)
    status = client.get(path_of(failed["status_url"])).json()
    assert status["status"] == "COMPLETED"
    assert status["error_type"] == "content_policy_violation" and status["error"]
    result = client.get(path_of(failed["response_url"]))
    assert result.status_code == 422
    assert result.json()["detail"][0]["type"] == "content_policy_violation"
    assert client.get(path_of(ok["response_url"])).status_code == 200  # only the next one


@pytest.mark.parametrize(
    ("error_type", "code"),
    [("runner_disconnected", 503), ("request_timeout", 504), ("startup_timeout", 504)],
)
def test_infrastructure_errors(
    client: TestClient, mock: FalMock, clock: ManualClock, error_type: str, code: int
) -> None:
    mock.set_outcome(DEV, Outcome.infra_error(error_type))
    queued = submit(client)
    clock.advance(10)
    status = client.get(path_of(queued["status_url"])).json()
    assert status["error_type"] == error_type
    result = client.get(path_of(queued["response_url"]))
    assert result.status_code == code
    assert result.json()["error_type"] == error_type
    assert result.headers["x-fal-error-type"] == error_type


def test_slow_run_with_logs(client: TestClient, mock: FalMock, clock: ManualClock) -> None:
    mock.next_outcome(DEV, Outcome.slow(60))
    queued = submit(client)
    clock.advance(1 + 30)
    body = client.get(path_of(queued["status_url"]), params={"logs": 1}).json()
    assert body["status"] == "IN_PROGRESS"
    assert [line["message"] for line in body["logs"]] == ["Step 1/5", "Step 2/5"]
    clock.advance(30)
    assert client.get(path_of(queued["status_url"])).json()["status"] == "COMPLETED"
    assert client.get(path_of(queued["response_url"])).json()["timings"] == {"inference": 60.0}


def test_wildcard_and_default_outcomes(
    client: TestClient, mock: FalMock, clock: ManualClock
) -> None:
    mock.set_outcome("*", Outcome.infra_error())
    mock.next_outcome("*", Outcome.success())
    first, second = submit(client), submit(client, "fal-ai/flux-1/schnell")
    clock.advance(30)
    assert client.get(path_of(first["response_url"])).status_code == 200
    assert client.get(path_of(second["response_url"])).status_code == 503


def test_outcome_json_round_trip_and_errors() -> None:
    outcome = Outcome.from_json(
        {"kind": "slow", "run_seconds": 3, "logs": [{"at": 0.5, "message": "half"}]}
    )
    assert Outcome.from_json(outcome.to_json()) == outcome
    assert (
        Outcome.from_json({"kind": "infra_error", "error_type": "request_timeout"}).status_code
        == 504
    )
    for bad, message in [
        ({"kind": "explode"}, "unknown outcome kind"),
        ({"kind": "success", "colour": "red"}, "unknown outcome field"),
        ({"kind": "model_error", "status_code": 200}, "status_code"),
        ({"run_seconds": -1}, "run_seconds"),
        ({"logs": [{"at": 2, "message": "x"}]}, "fraction of the run"),
        ({"logs": [{"message": "x", "level": "LOUD"}]}, "log level"),
        ([], "JSON object"),
    ]:
        with pytest.raises(ValueError, match=message):
            Outcome.from_json(bad)
