"""The one mapping from the service's typed errors to HTTP answers."""

from __future__ import annotations

import warnings

import pytest

from mockserver.errors import (
    InvalidInput,
    JobFailed,
    JobFailure,
    MockError,
    RequestNotFound,
    ResultNotReady,
    Unauthenticated,
    UnknownEndpoint,
)
from mockserver.http import HttpError, http_error
from mockserver.outcomes import Outcome
from mockserver.queue import QueueFull
from tests.conftest import MockFactory


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (Unauthenticated("missing", "Key"), 401, "Missing Authorization header"),
        (Unauthenticated("unknown_key", "Bearer"), 401, "Invalid API key"),
        (UnknownEndpoint("a/b"), 404, "Application 'a/b' not found"),
        (RequestNotFound("r-1"), 404, "Request 'r-1' not found"),
        (ResultNotReady(in_queue=True), 400, "Request is still in the queue"),
        (QueueFull(), 429, "Too many requests in the queue"),
    ],
)
def test_each_service_error_has_its_status(error: MockError, status: int, detail: str) -> None:
    answer = http_error(error)
    assert answer.status_code == status
    assert answer.body["detail"].startswith(detail)


def test_invalid_input_is_fastapis_422_list() -> None:
    answer = http_error(InvalidInput.one(["body", "seed"], "Input should be an integer", "int"))
    assert answer.status_code == 422
    assert answer.body == {
        "detail": [{"loc": ["body", "seed"], "msg": "Input should be an integer", "type": "int"}]
    }


def test_a_queue_full_answer_says_when_to_retry() -> None:
    assert http_error(QueueFull()).headers == {"Retry-After": "1"}


def test_job_failures_carry_fals_error_headers() -> None:
    model = http_error(JobFailed(JobFailure(422, [{"msg": "bad"}])))
    assert (model.status_code, model.body, model.headers) == (422, {"detail": [{"msg": "bad"}]}, {})
    timeout = http_error(
        JobFailed(JobFailure(504, "late", error_type="request_timeout", timeout_type="user"))
    )
    assert timeout.body == {"detail": "late", "error_type": "request_timeout"}
    assert timeout.headers == {
        "X-Fal-Error-Type": "request_timeout",
        "X-Fal-Request-Timeout-Type": "user",
    }


def test_an_unmapped_service_error_is_a_plain_500() -> None:
    class Unmapped(MockError):
        pass

    assert http_error(Unmapped("x")).body == {"detail": "Internal server error"}


def test_the_old_import_path_still_works_with_a_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from mockserver.mock import HttpError as Old
    assert Old is HttpError
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


def test_error_of_still_answers_with_a_warning(make_mock: MockFactory) -> None:
    mock = make_mock(instant=True)
    mock.next_outcome("fal-ai/flux-1/dev", Outcome.model_error(status_code=422, detail="no"))
    job, _ = mock.submit(
        mock.model_for("fal-ai/flux-1/dev"), "tenant", {"prompt": "x"}, base_url="http://t"
    )
    with pytest.warns(DeprecationWarning, match="failure_of"):
        error = mock.error_of(job)
    assert isinstance(error, HttpError) and error.status_code == 422
