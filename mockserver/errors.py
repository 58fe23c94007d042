"""The typed errors of the mock service, in the domain's words.

`FalMock` raises these and knows nothing of HTTP; the HTTP layer
(`mockserver.http.http_error`) maps each type to its answer in one place.
Callers tell errors apart by type, never by message text: the message is
only what a person reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


class MockError(Exception):
    """Base of every error the mock service refuses a protocol call with."""


class Unauthenticated(MockError):
    """The call carries no usable key: none, the wrong scheme, or an unknown key."""

    def __init__(self, reason: Literal["missing", "malformed", "unknown_key"], scheme: str) -> None:
        messages = {
            "missing": f"Missing Authorization header: send 'Authorization: {scheme} <key>'",
            "malformed": f"Invalid Authorization header: expected '{scheme} <key>'",
            "unknown_key": "Invalid API key",
        }
        super().__init__(messages[reason])
        self.reason = reason
        self.scheme = scheme


class UnknownEndpoint(MockError):
    """No model answers this endpoint id."""

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"Application {endpoint_id!r} not found")
        self.endpoint_id = endpoint_id


class RequestNotFound(MockError):
    """A request id that is unknown, expired, or another key's."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"Request {request_id!r} not found")
        self.request_id = request_id


class InvalidInput(MockError):
    """A submit the endpoint refuses: one FastAPI-style entry per problem
    (``{"loc": [...], "msg": ..., "type": ...}``), as fal reports them."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(issue.get("msg", "")) for issue in issues))
        self.issues = issues

    @classmethod
    def one(cls, loc: list[str | int], msg: str, type: str, **extra: Any) -> InvalidInput:
        """The error for a single problem at `loc`."""
        return cls([{"loc": loc, "msg": msg, "type": type, **extra}])


class ResultNotReady(MockError):
    """A result asked for before the request completed."""

    def __init__(self, *, in_queue: bool) -> None:
        super().__init__(f"Request is still {'in the queue' if in_queue else 'in progress'}")
        self.in_queue = in_queue


@dataclass(frozen=True, slots=True)
class JobFailure:
    """How a finished request failed, as the protocol reports it.

    `status_code` is fal's code for the failure (it is also what webhooks
    carry); `error_type` is set for infrastructure errors only (fal names them
    in the body and in a header); `timeout_type` says who set a missed deadline.
    """

    status_code: int
    detail: Any
    error_type: str | None = None
    timeout_type: str | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body fal answers (and webhooks carry) for this failure."""
        if self.error_type is None:
            return {"detail": self.detail}
        return {"detail": self.detail, "error_type": self.error_type}

    def text(self) -> str:
        """The one-line ``error`` a status answer shows for this failure."""
        detail = self.detail
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            return str(detail[0].get("msg", "Request failed"))
        return "Request failed"


class JobFailed(MockError):
    """The result of a request that ended badly (failed, cancelled, timed out)."""

    def __init__(self, failure: JobFailure) -> None:
        super().__init__(failure.text())
        self.failure = failure
