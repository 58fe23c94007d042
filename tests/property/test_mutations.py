"""Each invariant of the state machine can fail: break the mock on purpose
(one way at a time) and the property tests must notice."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from mockserver.catalog import Model
from mockserver.client import FalError
from mockserver.mock import FalMock
from mockserver.queue import Job, QueueEngine, State
from tests.property.test_stateful import QueueMachine

# Generation only: finding the bug is the point here, shrinking it is not.
SEARCH = settings(
    phases=[Phase.generate],
    max_examples=400,
    stateful_step_count=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


def _growing_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count()

    def position(self: QueueEngine, job: Job) -> int:
        return 0 if job.state is not State.IN_QUEUE else next(counter)

    monkeypatch.setattr(QueueEngine, "queue_position", position)


def _no_logs_key(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.status_body

    def status_body(
        self: FalMock, job: Job, base: str, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        code, body = original(self, job, base, **kwargs)
        if body["status"] == "IN_PROGRESS" and not kwargs.get("with_logs"):
            del body["logs"]  # "logs were not asked for, so why send the key"
        return code, body

    monkeypatch.setattr(FalMock, "status_body", status_body)


def _early_result_is_200(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.result

    def result(self: FalMock, job: Job) -> tuple[int, bytes]:
        if job.state is not State.COMPLETED:
            return 200, b"{}"
        return original(self, job)

    monkeypatch.setattr(FalMock, "result", result)


def _num_images_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Model.media_specs

    def media_specs(self: Model, data: dict[str, Any], seed: int) -> Any:
        return original(self, {**data, "num_images": 1}, seed)

    monkeypatch.setattr(Model, "media_specs", media_specs)
    # ... and in outputs synthesized from a schema (the catalog's models).
    monkeypatch.setattr("mockserver.synthesis._requested_count", lambda data: 1)


def _full_model_path_in_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.urls

    def urls(self: FalMock, job: Job, base_url: str) -> dict[str, str]:
        return {
            k: v.replace(f"/{job.app_id}/", f"/{job.endpoint_id}/")
            for k, v in original(self, job, base_url).items()
        }

    monkeypatch.setattr(FalMock, "urls", urls)


def _status_goes_backwards(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.status_body

    def status_body(
        self: FalMock, job: Job, base: str, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        code, body = original(self, job, base, **kwargs)
        if body["status"] == "COMPLETED" and job.id[-1] in "02468ace":
            return 202, {**body, "status": "IN_QUEUE", "queue_position": 0}
        return code, body

    monkeypatch.setattr(FalMock, "status_body", status_body)


def _cancelled_yields_output(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.error_of

    def error_of(self: FalMock, job: Job) -> Any:
        return None if job.cancelled else original(self, job)

    monkeypatch.setattr(FalMock, "error_of", error_of)
    original_result = FalMock.result

    def result(self: FalMock, job: Job) -> tuple[int, bytes]:
        if job.cancelled:
            return 200, b'{"images": []}'
        return original_result(self, job)

    monkeypatch.setattr(FalMock, "result", result)


def _unprovoked_503(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.result
    calls = itertools.count()

    def result(self: FalMock, job: Job) -> tuple[int, bytes]:
        if next(calls) % 7 == 6:
            from mockserver.mock import HttpError

            raise HttpError(503, {"detail": "oops"})
        return original(self, job)

    monkeypatch.setattr(FalMock, "result", result)


MUTATIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "queue_position grows": _growing_positions,
    "IN_PROGRESS without the logs key": _no_logs_key,
    "200 instead of 400 for an early result": _early_result_is_200,
    "num_images ignored": _num_images_ignored,
    "request URLs with the full model path": _full_model_path_in_urls,
    "status goes backwards": _status_goes_backwards,
    "cancelled request yields an output": _cancelled_yields_output,
    "5xx that was not injected": _unprovoked_503,
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_the_state_machine_catches(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    MUTATIONS[name](monkeypatch)
    with pytest.raises((AssertionError, FalError, Flaky)):
        run_state_machine_as_test(QueueMachine, settings=SEARCH)
