"""`cancel`, `unknown` (made-up request ids) and `cross_key` (another key's view)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from mockserver.check.findings import Finding
from mockserver.check.judge import requests as judge
from mockserver.check.judge import status
from mockserver.check.results import Verdict
from mockserver.check.steps.base import Job, Options, StepKind, no_options

if TYPE_CHECKING:
    from mockserver.check.unit import Unit


async def cancel(unit: Unit, options: Options) -> None:
    """Cancel the job when queued (then it must yield nothing) or after completion."""
    job = unit.need_job()
    if options["when"] == "completed":
        unit.need_completed()
        answer = await unit.call("PUT", job.urls["cancel"])
        unit.add(judge.cancel_completed(answer))
        return
    answer = await unit.call("PUT", job.urls["cancel"])
    job.cancelled = answer.accepted
    early = judge.cancel_requested(answer)
    if early is not None:
        unit.add(early)
        return
    await _wait_quietly(unit, job)
    result = await unit.call("GET", job.urls["response"])
    unit.add(judge.cancelled_result(answer, result))


async def _wait_quietly(unit: Unit, job: Job) -> None:
    """Wait for COMPLETED without judging the polls (another step's job)."""

    async def completed() -> bool:
        return status.status_of(await unit.status(job, logs=False)) == "COMPLETED"

    await unit.until(completed)


CANCEL = StepKind(
    name="cancel",
    options={
        "type": "object",
        "additionalProperties": False,
        "required": ["when"],
        "properties": {"when": {"enum": ["queued", "completed"]}},
    },
    run=cancel,
    describe=lambda options, where: [f"PUT  {where.request_url('cancel')} ({options['when']})"],
)


async def unknown(unit: Unit, options: Options) -> None:
    """Status, result and cancel of a request id nobody submitted."""
    request_id = str(uuid.uuid4())
    calls = [
        ("GET", unit.url(request_id, "status", None)),
        ("GET", unit.url(request_id, "result", None)),
        ("PUT", unit.url(request_id, "cancel", None)),
    ]
    answers = [await unit.call(method, url) for method, url in calls]
    unit.add(judge.unknown_ids(answers))


UNKNOWN = StepKind(
    name="unknown",
    options=no_options(),
    run=unknown,
    describe=lambda options, where: [f"GET/PUT {where.request_url('status', '{random id}')} etc."],
)


async def cross_key(unit: Unit, options: Options) -> None:
    """The job's status and result asked with the second key."""
    job = unit.need_job()
    if not unit.target.second_key:
        reason = "needs a second key (--second-key-env)"
        unit.add(Finding.of("cross-key-404", Verdict.SKIP, reason))
        return
    answers = [
        await unit.status(job, logs=False, auth="second-key"),
        await unit.call("GET", job.urls["response"], auth="second-key"),
    ]
    unit.add(judge.other_key(answers))


CROSS_KEY = StepKind(
    name="cross_key",
    options=no_options(),
    run=cross_key,
    describe=lambda options, where: ["GET  status and result with the second key"],
)
