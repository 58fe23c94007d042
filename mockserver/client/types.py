"""What the client returns: handles and statuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class QueueHandle:
    """A submitted request: its id and the (rewritten) URLs to follow it."""

    request_id: str
    endpoint_id: str
    response_url: str
    status_url: str
    cancel_url: str
    queue_position: int | None = None

    @property
    def stream_url(self) -> str:
        """The SSE status stream of this request."""
        return self.status_url.split("?", 1)[0].rstrip("/") + "/stream"


@dataclass(frozen=True, slots=True)
class Queued:
    """IN_QUEUE, with the number of requests ahead."""

    position: int
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class InProgress:
    """IN_PROGRESS, with logs (None when not asked for)."""

    logs: list[dict[str, Any]] | None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class Completed:
    """COMPLETED; `error`/`error_type` are set when the run failed."""

    logs: list[dict[str, Any]] | None
    metrics: dict[str, Any]
    error: str | None = None
    error_type: str | None = None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


Status = Queued | InProgress | Completed
