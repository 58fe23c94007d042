"""How a simulated run ends: success, a model error, or an infrastructure error."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from mockserver.jsonfields import (
    MAX_DURATION_SECONDS,
    InvalidControlInput,
    count,
    json_object,
    number,
    status_code,
    string,
)

OutcomeKind = Literal["success", "model_error", "infra_error"]

#: Infrastructure error kinds fal documents, with the status code each comes with.
INFRA_ERROR_CODES: dict[str, int] = {
    "request_timeout": 504,
    "startup_timeout": 504,
    "runner_disconnected": 503,
    "runner_scheduling_failure": 503,
    "internal_error": 500,
}

CONTENT_POLICY_DETAIL: list[dict[str, Any]] = [
    {
        "loc": ["body", "prompt"],
        "msg": "The content could not be processed because it contained material"
        " flagged by a content checker.",
        "type": "content_policy_violation",
        "input": None,
    }
]


@dataclass(frozen=True, slots=True)
class LogLine:
    """A log line a run emits `at` a fraction (0..1) of the way through it."""

    at: float
    message: str
    level: str = "INFO"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The scripted end of a run; the catalog's default is plain success."""

    kind: OutcomeKind = "success"
    status_code: int = 200
    detail: Any = None
    error_type: str | None = None
    queue_seconds: float | None = None
    run_seconds: float | None = None
    logs: tuple[LogLine, ...] | None = field(default=None)
    #: The result is exactly this JSON (a success only), instead of a generated one.
    output: dict[str, Any] | None = None
    #: The generated result with these top-level fields replaced (a success only).
    merge: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if (self.output is not None or self.merge is not None) and self.kind != "success":
            raise InvalidControlInput(
                "output and merge choose the result of a success, not of an error"
            )
        if self.output is not None and self.merge is not None:
            raise InvalidControlInput("give the whole output, or the fields to merge, not both")

    @property
    def failed(self) -> bool:
        """True for model and infrastructure errors."""
        return self.kind != "success"

    @classmethod
    def success(cls) -> Outcome:
        """A normal run."""
        return cls()

    @classmethod
    def model_error(
        cls, status_code: int = 422, detail: Any = None, error_type: str | None = None
    ) -> Outcome:
        """The model rejects the input (by default a content-policy 422)."""
        if detail is None:
            detail = CONTENT_POLICY_DETAIL
            error_type = error_type or "content_policy_violation"
        return cls(
            kind="model_error", status_code=status_code, detail=detail, error_type=error_type
        )

    @classmethod
    def infra_error(
        cls, error_type: str = "runner_disconnected", status_code: int | None = None
    ) -> Outcome:
        """The platform fails the run (`error_type` as fal names it)."""
        code = status_code or INFRA_ERROR_CODES.get(error_type, 503)
        detail = f"Request failed: {error_type.replace('_', ' ')}"
        return cls(kind="infra_error", status_code=code, detail=detail, error_type=error_type)

    @classmethod
    def slow(cls, run_seconds: float, logs: tuple[LogLine, ...] | None = None) -> Outcome:
        """A successful run that takes `run_seconds` and logs as it goes."""
        if logs is None:
            steps = 5
            logs = tuple(
                LogLine(at=i / steps, message=f"Step {i}/{steps}") for i in range(1, steps + 1)
            )
        return cls(run_seconds=run_seconds, logs=logs)

    @classmethod
    def with_output(
        cls, output: dict[str, Any] | None = None, *, merge: dict[str, Any] | None = None
    ) -> Outcome:
        """A success whose result is `output`, or the generated one with `merge`'s fields."""
        if output is None and merge is None:
            raise InvalidControlInput(
                "give the output, or the fields to merge into the generated one"
            )
        return cls(output=output, merge=merge)

    @classmethod
    def from_json(cls, data: Any) -> Outcome:
        """Build an outcome from the control API's JSON form (`InvalidControlInput` if wrong).

        ``{"kind": "success"|"model_error"|"infra_error"|"slow", "status_code": int,
        "detail": any, "error_type": str, "queue_seconds": n, "run_seconds": n,
        "logs": [{"at": 0.5, "message": "...", "level": "INFO"}],
        "output": {...} | "merge": {...}}`` (output/merge: a success's result)
        """
        data = json_object(data, _OUTCOME_FIELDS, "an outcome")
        for name in ("output", "merge"):
            if data.get(name) is not None and not isinstance(data[name], dict):
                raise InvalidControlInput(f"{name} must be a JSON object")
        kind = data.get("kind", "success")
        logs = _logs_from_json(data["logs"]) if "logs" in data else None
        timing = {
            name: number(data[name], name, 0, MAX_DURATION_SECONDS, " of seconds")
            for name in ("queue_seconds", "run_seconds")
            if data.get(name) is not None
        }
        code = status_code(data.get("status_code"))
        error_type = string(data.get("error_type"), "error_type", 200)
        base: Outcome
        if kind == "success":
            base = cls()
        elif kind == "slow":
            base = cls.slow(timing.get("run_seconds", 10.0), logs)
        elif kind == "model_error":
            base = cls.model_error(code or 422, data.get("detail"), error_type)
        elif kind == "infra_error":
            base = cls.infra_error(error_type or "runner_disconnected", code)
        else:
            raise InvalidControlInput(
                f"unknown outcome kind {kind!r}: use success, slow, model_error or infra_error"
            )
        return cls(
            kind=base.kind,
            status_code=base.status_code,
            detail=base.detail,
            error_type=base.error_type,
            queue_seconds=timing.get("queue_seconds", base.queue_seconds),
            run_seconds=timing.get("run_seconds", base.run_seconds),
            logs=logs if logs is not None else base.logs,
            output=data.get("output"),
            merge=data.get("merge"),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form accepted by `from_json`."""
        data: dict[str, Any] = {"kind": self.kind}
        if self.failed:
            data.update(
                status_code=self.status_code, detail=self.detail, error_type=self.error_type
            )
        for name in ("queue_seconds", "run_seconds"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.logs is not None:
            data["logs"] = [{"at": x.at, "message": x.message, "level": x.level} for x in self.logs]
        if self.output is not None:
            data["output"] = self.output
        if self.merge is not None:
            data["merge"] = self.merge
        return data


_OUTCOME_FIELDS = (
    "kind",
    "status_code",
    "detail",
    "error_type",
    "queue_seconds",
    "run_seconds",
    "logs",
    "output",
    "merge",
)
LOG_LEVELS = frozenset({"STDERR", "STDOUT", "ERROR", "INFO", "WARN", "DEBUG"})


def _logs_from_json(value: Any) -> tuple[LogLine, ...]:
    if not isinstance(value, list):
        raise InvalidControlInput("logs must be a list of {at, message, level}")
    lines = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("message"), str):
            raise InvalidControlInput("each log line needs a string 'message'")
        at = number(item.get("at", 0.0), "a log line's 'at' (a fraction of the run)", 0, 1)
        level = item.get("level", "INFO")
        if level not in LOG_LEVELS:
            raise InvalidControlInput(f"log level must be one of {', '.join(sorted(LOG_LEVELS))}")
        lines.append(LogLine(at=at, message=item["message"], level=level))
    return tuple(sorted(lines, key=lambda line: line.at))


@dataclass(slots=True)
class _Scripted:
    outcome: Outcome
    remaining: int


class OutcomePlan:
    """How the next requests end, per endpoint id ("*": any endpoint).

    `next` outcomes are used up in order before the `always` ones. A count is
    kept as a counter: scripting a hundred million requests costs one entry.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._always: dict[str, Outcome] = {}
        self._next: dict[str, deque[_Scripted]] = {}

    def always(self, endpoint_id: str, outcome: Outcome) -> None:
        """Every later request to `endpoint_id` ends with `outcome`."""
        with self._lock:
            self._always[endpoint_id] = outcome

    def next(self, endpoint_id: str, outcome: Outcome, times: int = 1) -> None:
        """The next `times` requests to `endpoint_id` end with `outcome`."""
        checked = count(times, "times")
        assert checked is not None
        with self._lock:
            self._next.setdefault(endpoint_id, deque()).append(_Scripted(outcome, checked))

    def take(self, endpoint_id: str) -> Outcome:
        """The outcome of a new request to `endpoint_id` (a scripted one is used up)."""
        with self._lock:
            for key in (endpoint_id, "*"):
                pending = self._next.get(key)
                if pending:
                    head = pending[0]
                    head.remaining -= 1
                    if not head.remaining:
                        pending.popleft()
                    return head.outcome
            return self._always.get(endpoint_id, self._always.get("*", _SUCCESS))

    def clear(self) -> None:
        """Forget every scripted outcome."""
        with self._lock:
            self._always.clear()
            self._next.clear()


_SUCCESS = Outcome()
