"""Judging status: polled answers, the status stream, and the two compared."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.results import Verdict, shorten
from mockserver.queue import State

# A request's states in the order they happen; anything else makes clients raise.
STATUS_ORDER = {state.value: order for order, state in enumerate(State)}
# States whose `logs` the official Python client reads (`data["logs"]`): without
# the key it raises. fal's own IN_QUEUE example has no `logs`.
_LOGS_READ = ("IN_PROGRESS", "COMPLETED")


def status_of(answer: Exchange) -> str | None:
    """The status an answer reports, when it is one clients know."""
    body = answer.json_object()
    state = body.get("status") if body else None
    return state if isinstance(state, str) and state in STATUS_ORDER else None


def unknown_status(answer: Exchange) -> Finding:
    """`completes` failed: a poll answered without a status clients know."""
    reason = f"status poll answered {answer.describe()} without a known status"
    return Finding.of("completes", Verdict.FAIL, reason, answer)


def not_completed(seconds: float, state: str | None, *answers: Exchange) -> Finding:
    """`completes` failed: no COMPLETED within the job's `seconds` (last seen: `state`)."""
    reason = f"not COMPLETED after {seconds:g} s ({state})"
    return Finding.of("completes", Verdict.FAIL, reason, *answers)


def logs_problem(body: dict[str, Any], logs: bool) -> str | None:
    """Why a status body would break a client reading its logs, or None."""
    state = body.get("status")
    if state not in _LOGS_READ:
        return None
    if "logs" not in body:
        return f"{state} without a `logs` key (clients read it)"
    if logs and not isinstance(body["logs"], list):
        return f"with ?logs=1, {state}'s `logs` is not a list"
    return None


def polls(answers: Sequence[Exchange], logs: bool) -> list[Finding]:
    """`status-codes`, `logs-key` and `status-order` over a request's status polls.

    `answers` are the polls in order, each with a known status (`status_of`), the
    last one COMPLETED; `logs` says whether they asked for logs.
    """
    problems: dict[str, tuple[str, Exchange]] = {}
    last_order, last_position = -1, None
    saw_pending = False
    for answer in answers:
        body = answer.json_object() or {}
        state = str(body.get("status"))
        pending = state != "COMPLETED"
        saw_pending |= pending
        expected_code = 202 if pending else 200
        if answer.status_code != expected_code:
            reason = f"{state} answered {answer.status_code}; fal answers {expected_code}"
            problems.setdefault("status-codes", (reason, answer))
        problem = logs_problem(body, logs)
        if problem:
            problems.setdefault("logs-key", (problem, answer))
        order = STATUS_ORDER.get(state, -1)
        position = body.get("queue_position")
        if order < last_order:
            problems.setdefault("status-order", (f"went back to {state}", answer))
        elif state == "IN_QUEUE" and not isinstance(position, int):
            problems.setdefault("status-order", ("IN_QUEUE without a queue_position", answer))
        elif (
            isinstance(position, int)
            and isinstance(last_position, int)
            and position > last_position
        ):
            reason = f"queue_position grew from {last_position} to {position}"
            problems.setdefault("status-order", (reason, answer))
        last_order = order
        last_position = position if state == "IN_QUEUE" else None
    held = f"held over {len(answers)} polls"
    findings = []
    for check in ("status-codes", "logs-key", "status-order"):
        if check in problems:
            reason, evidence = problems[check]
            findings.append(Finding.of(check, Verdict.FAIL, reason, evidence))
        elif check == "status-codes" and not saw_pending:
            reason = "the request finished before the first poll"
            findings.append(Finding.of(check, Verdict.SKIP, reason))
        else:
            findings.append(Finding.of(check, Verdict.PASS, held, *answers[-1:]))
    return findings


@dataclass
class StreamLog:
    """The events of a status stream as they arrive, and what is wrong with them."""

    events: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        """The last event is COMPLETED."""
        return bool(self.events) and self.events[-1].get("status") == "COMPLETED"

    def feed(self, raw: str) -> None:
        """One server-sent event (the text between blank lines)."""
        lines = raw.splitlines()
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        if not data:
            return  # a comment (keep-alive) or an empty event
        try:
            event = json.loads(data)
        except ValueError:
            self.problems.append(f"an event is not JSON: {shorten(data, 80)!r}")
            return
        if not isinstance(event, dict) or event.get("status") not in STATUS_ORDER:
            self.problems.append(f"an event has no known status: {shorten(data, 80)!r}")
            return
        if self.events:
            before = self.events[-1]["status"]
            if STATUS_ORDER[event["status"]] < STATUS_ORDER[before]:
                self.problems.append(f"went back from {before} to {event['status']}")
            if before == "COMPLETED":
                self.problems.append("an event came after COMPLETED")
        self.events.append(event)


def stream(record: Exchange, log: StreamLog, *, closed: bool, grace: float) -> list[Finding]:
    """`stream-events` and `stream-closes` for one stream read.

    `record` is the stream's answer (status, headers, maybe an error); `closed`
    says whether the server ended it within `grace` seconds of COMPLETED.
    """
    problems = list(log.problems)
    content_type = record.header("content-type") or ""
    if record.status_code == 200 and not content_type.startswith("text/event-stream"):
        problems.insert(0, f"content type {content_type!r}, not text/event-stream")
    if record.status_code != 200 and not record.error:
        problems.insert(0, f"stream answered {record.describe()}")
    if record.error:
        problems.append(record.error)
    if problems or not log.completed:
        reason = "; ".join(problems) or "the stream ended before COMPLETED"
        return [Finding.of("stream-events", Verdict.FAIL, reason, record)]
    events = Finding.of(
        "stream-events", Verdict.PASS, f"{len(log.events)} events, last COMPLETED", record
    )
    if not closed:
        reason = f"still open {grace:g} s after COMPLETED (fal closes the stream)"
        return [events, Finding.of("stream-closes", Verdict.FAIL, reason, record)]
    return [events, Finding.of("stream-closes", Verdict.PASS, "closed after COMPLETED", record)]


def stream_agrees(answer: Exchange, streamed: dict[str, Any]) -> Finding:
    """`status-stream-equivalent`: a poll after completion agrees with the last event."""
    polled = answer.json_object() or {}
    differences = [
        f"{name}: poll {polled.get(name)!r}, stream {streamed.get(name)!r}"
        for name in ("status", "request_id")
        if polled.get(name) != streamed.get(name)
    ]
    poll_logs, stream_logs = polled.get("logs"), streamed.get("logs")
    # The stream sends only new lines per event (the last may carry none);
    # the poll's full list cannot be empty when the stream showed some.
    if isinstance(poll_logs, list) and not poll_logs and stream_logs:
        differences.append("logs: the poll shows none, the stream showed some")
    check = "status-stream-equivalent"
    if differences:
        return Finding.of(check, Verdict.FAIL, "; ".join(differences), answer)
    reason = "the poll and the stream agree on status and request_id"
    return Finding.of(check, Verdict.PASS, reason, answer)
