"""The client's typed errors: the only exceptions it raises."""

from __future__ import annotations

from typing import Any


class FalError(Exception):
    """Base of every error the reference client raises."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: Any = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail
        self.error_type = error_type
        self.request_id = request_id

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r},"
            f" error_type={self.error_type!r}, request_id={self.request_id!r})"
        )


class FalHTTPError(FalError):
    """The server answered with an error status (`status_code`, `detail`, `error_type`)."""


class FalValidationError(FalHTTPError):
    """A 422: the input was rejected; `errors` holds the `detail` entries."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The `{"loc", "msg", "type"}` entries of the 422 body."""
        return (
            [e for e in self.detail if isinstance(e, dict)] if isinstance(self.detail, list) else []
        )

    @property
    def fields(self) -> list[str]:
        """The input fields named by the errors (``loc`` after ``body``)."""
        names = []
        for entry in self.errors:
            loc = entry.get("loc") or []
            if len(loc) >= 2 and loc[0] == "body":
                names.append(str(loc[1]))
        return names


class FalProtocolError(FalError):
    """The server's answer does not follow the protocol (says what was wrong)."""


class FalTransportError(FalError):
    """The server could not be reached or dropped the connection (after retries)."""


class FalTimeoutError(FalError):
    """`subscribe` ran out of time; the request was cancelled."""
