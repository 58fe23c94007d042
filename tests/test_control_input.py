"""One input rule for every control operation: refused inputs get a 422 JSON
detail at once and change nothing; counts are counters, never lists."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from starlette.testclient import TestClient

from mockserver import FalMock, ManualClock, Outcome
from mockserver.clock import LATEST_READING
from mockserver.jsonfields import InvalidControlInput
from mockserver.testing import InProcessFal, MockOptions
from tests.conftest import DEV, path_of, submit


def _assert_responsive(client: TestClient) -> None:
    assert client.get("/_mock/health").status_code == 200
    assert client.get("/_mock/clock").status_code == 200
    assert client.get("/_mock/requests").status_code == 200
    started = time.perf_counter()
    queued = submit(client)
    assert time.perf_counter() - started < 5  # generous: "answers", not a benchmark
    assert client.get(path_of(queued["status_url"])).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        b'{"seconds": 1e309}',  # infinity once parsed
        b'{"seconds": -1e309}',
        b'{"seconds": 1e12}',  # a date past year 9999
        b'{"seconds": NaN}',
        b'{"seconds": Infinity}',
        b'{"seconds": -1}',
        b'{"seconds": "1"}',
        b'{"seconds": true}',
        b'{"seconds": null}',
        b'{"seconds": ' + b"9" * 5000 + b"}",
        b"{}",
        b"[1]",
    ],
)
def test_a_refused_clock_step_answers_422_and_moves_nothing(
    client: TestClient, mock: FalMock, body: bytes
) -> None:
    before = mock.clock.now()
    response = client.post("/_mock/clock/advance", content=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert mock.clock.now() == before
    _assert_responsive(client)


def test_the_clock_never_passes_its_latest_reading(client: TestClient) -> None:
    clock = ManualClock(start=LATEST_READING - 10)
    with pytest.raises(InvalidControlInput):
        clock.advance(11)
    assert clock.now() == LATEST_READING - 10
    assert clock.advance(10) == LATEST_READING
    with pytest.raises(InvalidControlInput):
        clock.set(float("nan"))
    with pytest.raises(InvalidControlInput):
        ManualClock(start=float("inf"))


def test_a_large_step_within_range_is_taken(client: TestClient) -> None:
    queued = submit(client)
    moved = client.post("/_mock/clock/advance", json={"seconds": 1e9})
    assert moved.status_code == 200 and moved.json()["now"].startswith("2057-")
    # The job ran and then expired on the way: a clean 404, not a broken server.
    assert client.get(path_of(queued["status_url"])).status_code == 404
    _assert_responsive(client)


def test_outcome_times_are_a_counter_not_a_list(client: TestClient) -> None:
    tracemalloc.start()
    try:
        response = client.post(
            "/_mock/outcomes", json={"outcome": {"kind": "model_error"}, "times": 100_000_000}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200 and response.json()["times"] == 100_000_000
    assert peak < 5_000_000  # a list of 1e8 references would be 800 MB
    for _ in range(3):
        queued = submit(client)
        client.post("/_mock/clock/advance", json={"seconds": 5})
        assert client.get(path_of(queued["response_url"])).status_code == 422


def test_counted_outcomes_run_out_in_order(mock: FalMock) -> None:
    mock.next_outcome("*", Outcome.model_error(), times=2)
    mock.next_outcome("*", Outcome.infra_error(), times=1)
    taken = [mock.outcomes.take(DEV).kind for _ in range(4)]
    assert taken == ["model_error", "model_error", "infra_error", "success"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_mock/outcomes", {"outcome": {"kind": "model_error"}, "times": 0}),
        ("/_mock/outcomes", {"outcome": {"kind": "model_error"}, "times": 1_000_000_001}),
        ("/_mock/outcomes", {"outcome": {"kind": "model_error"}, "times": 1.5}),
        ("/_mock/outcomes", {"outcome": {"kind": "model_error"}, "times": True}),
        ("/_mock/outcomes", {"outcome": {"kind": "slow", "run_seconds": 1e300}}),
        ("/_mock/outcomes", {"outcome": {"kind": "model_error", "error_type": 5}}),
        ("/_mock/outcomes", {"endpoint_id": ["x"] * 1000, "outcome": {}}),
        ("/_mock/faults", {"status_code": 503, "times": 10**12}),
        ("/_mock/faults", {"latency": 1e308}),
        ("/_mock/faults", {"status_code": 429, "retry_after": 1e20}),
        ("/_mock/faults", {"status_code": 503, "detail": "x" * 10_000}),
    ],
)
def test_a_refused_control_call_changes_nothing(
    client: TestClient, mock: FalMock, path: str, body: object
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and len(detail) < 500
    assert client.get("/_mock/faults").json() == []
    queued = submit(client)  # no outcome or fault was scripted
    client.post("/_mock/clock/advance", json={"seconds": 5})
    assert client.get(path_of(queued["response_url"])).status_code == 200


def test_answers_follow_the_error_type_not_its_text(
    client: TestClient, mock: FalMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(seconds: float) -> float:
        raise InvalidControlInput("the real clock says no")  # 'real' in the text: still 422

    monkeypatch.setattr(mock, "advance", refuse)
    response = client.post("/_mock/clock/advance", json={"seconds": 1})
    assert response.status_code == 422


def test_the_python_twin_follows_the_same_rule() -> None:
    fal = InProcessFal(MockOptions())
    before = fal.mock.clock.now()
    for bad in (float("inf"), float("nan"), 1e12, -1):
        with pytest.raises(InvalidControlInput):
            fal.advance(bad)
    assert fal.mock.clock.now() == before
    with pytest.raises(InvalidControlInput):
        fal.next_outcome(DEV, "model_error", times=0)
    with pytest.raises(InvalidControlInput):
        fal.set_timing(queue_seconds=float("inf"))
    with pytest.raises(InvalidControlInput):
        fal.add_fault(status_code=503, times=-1)
    assert fal.mock.faults.pending() == []
    assert fal.mock.outcomes.take(DEV).kind == "success"
