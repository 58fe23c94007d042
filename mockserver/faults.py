"""Injected faults: what the next matching request(s) get instead of an answer."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from mockserver.jsonfields import (
    MAX_DURATION_SECONDS,
    InvalidControlInput,
    count,
    json_object,
    number,
    status_code,
    string,
)

FaultAction = Literal[
    "submit", "status", "stream", "result", "cancel", "run", "run_stream", "media", "any"
]
#: The actions a fault may name, read from `FaultAction` (one list, not two).
FAULT_ACTIONS: tuple[str, ...] = get_args(FaultAction)
_ids = itertools.count(1)
_FAULT_FIELDS = (
    "status_code",
    "latency",
    "drop",
    "retry_after",
    "detail",
    "endpoint",
    "action",
    "times",
)


@dataclass(frozen=True, slots=True)
class Fault:
    """A transport-level misbehaviour for matching requests.

    `status_code` answers with a fal-style error instead of the real answer
    (429 adds `Retry-After: retry_after`); `latency` delays the answer by
    that many real seconds (it models the network, not the queue); `drop`
    closes the connection mid-response. `endpoint` matches an endpoint id or
    app id prefix (None: any); `times` is how many requests it applies to
    (None: until cleared).
    """

    status_code: int | None = None
    latency: float = 0.0
    drop: bool = False
    retry_after: float | None = None
    detail: str | None = None
    endpoint: str | None = None
    action: FaultAction = "any"
    times: int | None = 1
    id: int = field(default_factory=lambda: next(_ids))

    def matches(self, action: str, endpoint: str | None) -> bool:
        """Does this fault apply to a request doing `action` on `endpoint`?"""
        if self.action not in ("any", action):
            return False
        if self.endpoint is None:
            return True
        return endpoint is not None and (
            endpoint == self.endpoint or endpoint.startswith(self.endpoint.rstrip("/") + "/")
        )

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Build a fault from the control API's JSON; `InvalidControlInput` says what is wrong."""
        data = json_object(data, _FAULT_FIELDS, "a fault")
        code = status_code(data.get("status_code"))
        latency = number(data.get("latency", 0.0), "latency", 0, 300, " of seconds")
        retry_after = data.get("retry_after")
        if retry_after is not None:
            retry_after = number(retry_after, "retry_after", 0, MAX_DURATION_SECONDS, " of seconds")
        action = data.get("action", "any")
        if action not in FAULT_ACTIONS:
            raise InvalidControlInput(f"action must be one of {', '.join(FAULT_ACTIONS)}")
        times = count(data.get("times", 1), "times", none="'until cleared'")
        drop = data.get("drop", False)
        if not isinstance(drop, bool):
            raise InvalidControlInput("drop must be true or false")
        if code is None and not drop and not latency:
            raise InvalidControlInput("a fault needs at least one of status_code, latency or drop")
        for name in ("endpoint", "detail"):
            string(data.get(name), name)
        return cls(
            status_code=code,
            latency=float(latency),
            drop=drop,
            retry_after=float(retry_after) if retry_after is not None else None,
            detail=data.get("detail"),
            endpoint=data.get("endpoint"),
            action=action,
            times=times,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form (as listed by the control API)."""
        return {
            "id": self.id,
            "status_code": self.status_code,
            "latency": self.latency,
            "drop": self.drop,
            "retry_after": self.retry_after,
            "detail": self.detail,
            "endpoint": self.endpoint,
            "action": self.action,
            "times": self.times,
        }


class FaultPlan:
    """The faults waiting for requests, consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Queue a fault."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, action: str, endpoint: str | None) -> Fault | None:
        """The first fault matching this request, used up by one application."""
        if not self._faults:  # the hot path: no lock when nothing is planned
            return None
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.matches(action, endpoint):
                    if fault.times is not None:
                        if fault.times <= 1:
                            del self._faults[i]
                        else:
                            self._faults[i] = replace(fault, times=fault.times - 1)
                    return fault
        return None

    def clear(self) -> None:
        """Forget every planned fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        """The faults not yet used up."""
        with self._lock:
            return list(self._faults)
