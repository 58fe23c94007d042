"""Reading the request log: which requests belong to one client request.

A checker that puts a unique marker in every input can ask for everything the
mock received about it: the submits whose body holds the marker, and every
later request (status, stream, result, cancel) about the request ids those
submits were given. That is how an intermediary's upstream traffic is matched
to its customers' requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mockserver.jsonfields import InvalidControlInput


class LoggedRequest(Protocol):
    """What the selection reads of a logged request."""

    @property
    def action(self) -> str:
        """submit, status, stream, result, cancel, run..."""
        ...

    @property
    def request_id(self) -> str | None:
        """The request id it was given or addressed."""
        ...

    @property
    def body(self) -> Any:
        """The (logged) JSON body."""
        ...


T = TypeVar("T", bound=LoggedRequest)


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """Conditions on logged requests; None means "any"."""

    action: str | None = None
    request_id: str | None = None
    marker: str | None = None

    @classmethod
    def from_query(cls, query: dict[str, str]) -> RequestFilter:
        """The filter of a control API query (`?action=&request_id=&marker=`)."""
        values: dict[str, str | None] = {}
        for name in ("action", "request_id", "marker"):
            value = query.get(name) or None  # an empty parameter is no condition
            if value is not None and len(value) > 256:
                raise InvalidControlInput(f"'{name}' is longer than 256 characters")
            values[name] = value
        return cls(values["action"], values["request_id"], values["marker"])

    def select(self, entries: Iterable[T]) -> list[T]:
        """The entries that match, oldest first."""
        chosen = list(entries)
        if self.marker is not None:
            chosen = _about_marker(chosen, self.marker)
        if self.request_id is not None:
            chosen = [e for e in chosen if e.request_id == self.request_id]
        if self.action is not None:
            chosen = [e for e in chosen if e.action == self.action]
        return chosen


def body_holds(body: Any, marker: str) -> bool:
    """Does the marker occur anywhere in a JSON body (keys and string values)?"""
    if body is None:
        return False
    return marker in json.dumps(body, ensure_ascii=False)


def _about_marker(entries: list[T], marker: str) -> list[T]:
    ids: set[str] = set()
    chosen: list[T] = []
    for entry in entries:
        if entry.action in ("submit", "run", "run_stream") and body_holds(entry.body, marker):
            chosen.append(entry)
            if entry.request_id is not None:
                ids.add(entry.request_id)
        elif entry.request_id is not None and entry.request_id in ids:
            chosen.append(entry)
    return chosen
