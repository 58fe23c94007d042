"""What a streamed run sends: partial outputs, when each is due, then the full output.

Pure data and arithmetic (no I/O): `mockserver.stream` serves it over HTTP.
A contract may shape it with ``stream: {events: N, partial: {...}}``; by
default a run sends three progress events, then its full output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_EVENTS = 3


@dataclass(frozen=True, slots=True)
class StreamShape:
    """How many partial events a streamed run sends and what each holds.

    Each partial event is `partial` plus ``progress`` (the fraction of the run
    done, 0..1), unless `partial` sets ``progress`` itself.
    """

    events: int = DEFAULT_EVENTS
    partial: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> StreamShape:
        """From a contract's ``stream`` mapping (already checked by the contract schema)."""
        if not isinstance(data, dict):
            return cls()
        return cls(
            events=int(data.get("events", DEFAULT_EVENTS)), partial=dict(data.get("partial", {}))
        )


@dataclass(frozen=True, slots=True)
class PartialEvent:
    """One partial output, due `at` seconds on the mock clock."""

    at: float
    data: dict[str, Any]


def partial_events(shape: StreamShape, started_at: float, run_seconds: float) -> list[PartialEvent]:
    """The partial events of a run that started at `started_at`, spread evenly over it.

    The k-th of n events is due after k/(n+1) of the run, so the last partial
    event comes before the full output (due at the run's end).
    """
    events = []
    for k in range(1, shape.events + 1):
        progress = k / (shape.events + 1)
        data = {"progress": round(progress, 4), **shape.partial}
        events.append(PartialEvent(at=started_at + progress * run_seconds, data=data))
    return events
