"""Judging answers about a request: cancel, unknown ids, another key's view."""

from __future__ import annotations

from collections.abc import Sequence

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.results import Verdict


def _already_completed(answer: Exchange) -> bool:
    body = answer.json_object() or {}
    return answer.status_code == 400 and body.get("status") == "ALREADY_COMPLETED"


def cancel_completed(answer: Exchange) -> Finding:
    """`cancel-completed`: cancelling a completed request answers 400 ALREADY_COMPLETED."""
    if _already_completed(answer):
        return Finding.of("cancel-completed", Verdict.PASS, "400 ALREADY_COMPLETED", answer)
    body = answer.json_object() or {}
    reason = f"expected 400 ALREADY_COMPLETED, got {answer.describe()} {body}"
    return Finding.of("cancel-completed", Verdict.FAIL, reason, answer)


def cancel_requested(answer: Exchange) -> Finding | None:
    """`cancel-queued`, first half: the cancel answer of a queued request.

    None when it is 202 CANCELLATION_REQUESTED (judge the result next, with
    `cancelled_result`); a finding otherwise.
    """
    body = answer.json_object() or {}
    if _already_completed(answer):
        reason = "the request finished before it could be cancelled while queued"
        return Finding.of("cancel-queued", Verdict.SKIP, reason, answer)
    if answer.status_code != 202 or body.get("status") != "CANCELLATION_REQUESTED":
        reason = f"expected 202 CANCELLATION_REQUESTED, got {answer.describe()} {body}"
        return Finding.of("cancel-queued", Verdict.FAIL, reason, answer)
    return None


def cancelled_result(cancel: Exchange, result: Exchange) -> Finding:
    """`cancel-queued`: after 202 CANCELLATION_REQUESTED the request yields no output."""
    if result.status_code == 200:
        reason = "the cancelled request still yielded an output"
        return Finding.of("cancel-queued", Verdict.FAIL, reason, cancel, result)
    reason = f"202 CANCELLATION_REQUESTED; its result then answers {result.status_code}"
    return Finding.of("cancel-queued", Verdict.PASS, reason, cancel, result)


def unknown_ids(answers: Sequence[Exchange]) -> Finding:
    """`unknown-id-404`: status, result and cancel of an unknown request id answer 404."""
    wrong = [a for a in answers if a.status_code != 404]
    if wrong:
        reason = f"an unknown request id answered {wrong[0].describe()}, not 404"
        return Finding.of("unknown-id-404", Verdict.FAIL, reason, *wrong)
    reason = "status, result and cancel: 404"
    return Finding.of("unknown-id-404", Verdict.PASS, reason, *answers)


def other_key(answers: Sequence[Exchange]) -> Finding:
    """`cross-key-404`: another key asking about this key's request gets 404."""
    leaked = [a for a in answers if a.status_code != 404]
    if leaked:
        reason = f"another key's request answered {leaked[0].describe()} to this key, not 404"
        return Finding.of("cross-key-404", Verdict.FAIL, reason, *leaked)
    reason = "a second key gets 404 for the first key's request"
    return Finding.of("cross-key-404", Verdict.PASS, reason, *answers)
