"""`gateway_request_id` on submit and `X-Fal-Request-Id` on every answer about a request."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mockserver import FalMock, ManualClock
from mockserver.outcomes import Outcome
from tests.conftest import DEV, path_of, submit


def test_submit_carries_gateway_request_id(client: TestClient) -> None:
    queued = submit(client)
    assert queued["gateway_request_id"] == queued["request_id"]


def test_status_cancel_and_result_carry_the_request_id(
    client: TestClient, clock: ManualClock
) -> None:
    queued = submit(client)
    rid = queued["request_id"]
    assert client.get(path_of(queued["status_url"])).headers["x-fal-request-id"] == rid
    early = client.get(path_of(queued["response_url"]))
    assert early.status_code == 400 and early.headers["x-fal-request-id"] == rid
    clock.advance(5)
    assert client.get(path_of(queued["response_url"])).headers["x-fal-request-id"] == rid
    late_cancel = client.put(path_of(queued["cancel_url"]))
    assert late_cancel.status_code == 400 and late_cancel.headers["x-fal-request-id"] == rid


@pytest.mark.parametrize(
    ("outcome", "code"),
    [(Outcome.model_error(), 422), (Outcome.infra_error("runner_disconnected"), 503)],
)
def test_error_results_carry_the_request_id(
    client: TestClient, mock: FalMock, clock: ManualClock, outcome: Outcome, code: int
) -> None:
    mock.next_outcome(DEV, outcome)
    queued = submit(client)
    clock.advance(5)
    result = client.get(path_of(queued["response_url"]))
    assert result.status_code == code
    assert result.headers["x-fal-request-id"] == queued["request_id"]


def test_a_sync_run_error_carries_the_request_id(client: TestClient, mock: FalMock) -> None:
    mock.next_outcome(DEV, Outcome.model_error())
    ran = client.post(f"/_run/{DEV}", json={"prompt": "x"})
    assert ran.status_code == 422 and len(ran.headers["x-fal-request-id"]) == 36


def test_unknown_requests_have_no_request_id(client: TestClient) -> None:
    missing = client.get(f"/fal-ai/flux-1/requests/{'0' * 8}-0000-4000-8000-{'0' * 12}")
    assert missing.status_code == 404 and "x-fal-request-id" not in missing.headers
