"""`wait` (poll or stream until COMPLETED) and `compare` (a poll against the stream)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import httpx

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.judge import status as judge
from mockserver.check.pacing import Deadline, within
from mockserver.check.results import Verdict
from mockserver.check.steps.base import Abort, Job, Options, StepKind, Where, no_options

if TYPE_CHECKING:
    from mockserver.check.unit import Unit


async def run(unit: Unit, options: Options) -> None:
    """Wait for COMPLETED by polling or on the status stream, judging what comes."""
    logs = bool(options.get("logs", True))
    if options.get("via", "poll") == "stream":
        await _stream(unit, logs)
    else:
        await _poll(unit, logs)


async def _poll(unit: Unit, logs: bool) -> None:
    job = unit.need_job()
    answers: list[Exchange] = []
    started = unit.pacer.now()
    while True:
        answer = await unit.status(job, logs)
        state = judge.status_of(answer)
        if state is None:
            unit.add(judge.unknown_status(answer))
            raise Abort("status polling failed", ran=True)
        answers.append(answer)
        if state == "COMPLETED":
            job.final_status = answer.json_object()
            break
        if unit.pacer.now() - started > unit.settings.job_timeout:
            unit.add(judge.not_completed(unit.settings.job_timeout, state, answers[0], answer))
            raise Abort("the request did not complete in time", ran=True)
        await unit.pacer.sleep(unit.settings.poll_interval)
    reason = f"COMPLETED after {len(answers)} polls"
    unit.add(Finding.of("completes", Verdict.PASS, reason, answers[-1]))
    for finding in judge.polls(answers, logs):
        unit.add(finding)


async def _stream(unit: Unit, logs: bool) -> None:
    job = unit.need_job()
    url = f"{job.urls['status'].rstrip('/')}/stream?logs={int(logs)}"
    record = Exchange("GET", url)
    log = judge.StreamLog()
    completed = asyncio.Event()

    async def read() -> None:
        async with unit.checker.client.stream("GET", url, headers=unit.target.auth()) as response:
            record.status_code = response.status_code
            record.headers = {k.lower(): v for k, v in response.headers.items()}
            if response.status_code != 200:
                record.body = await response.aread()
                return
            buffer = ""
            async for text in response.aiter_text():
                buffer += text
                while "\n\n" in buffer:
                    raw, buffer = buffer.split("\n\n", 1)
                    log.feed(raw)
                    if log.completed:
                        completed.set()

    reader = asyncio.ensure_future(read())
    settings = unit.settings
    closed = True
    try:
        # Until COMPLETED arrives or the stream ends: the job's time.
        until_completed = asyncio.ensure_future(completed.wait())
        try:
            await within(
                unit.pacer,
                settings.job_timeout,
                asyncio.wait({reader, until_completed}, return_when=asyncio.FIRST_COMPLETED),
            )
        finally:
            until_completed.cancel()
        if not reader.done():
            # COMPLETED came: fal closes the stream now; a short grace decides.
            try:
                await within(unit.pacer, settings.stream_grace, asyncio.shield(reader))
            except Deadline:
                closed = False
        if reader.done() and not reader.cancelled():
            reader.result()
    except Deadline:
        log.problems.append(f"no COMPLETED event within {settings.job_timeout:g} s")
    except httpx.HTTPError as exc:
        record.error = f"transport error: {type(exc).__name__}: {exc}"
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader
    record.body = "\n".join(str(e) for e in log.events[-3:]).encode()
    for finding in judge.stream(record, log, closed=closed, grace=settings.stream_grace):
        unit.add(finding)
    if not log.completed or log.problems or record.error:
        raise Abort("the stream did not report completion", ran=True)
    job.final_status = log.events[-1]
    if not closed:
        raise Abort("the stream never closed", ran=True)


def describe(options: Options, where: Where) -> list[str]:
    """The status URL polled, or streamed, until COMPLETED."""
    stream = options.get("via", "poll") == "stream"
    url = where.request_url("stream" if stream else "status")
    return [f"GET  {url} until COMPLETED"]


WAIT = StepKind(
    name="wait",
    options={
        "type": "object",
        "additionalProperties": False,
        "properties": {"via": {"enum": ["poll", "stream"]}, "logs": {"type": "boolean"}},
    },
    run=run,
    describe=describe,
)


async def compare(unit: Unit, options: Options) -> None:
    """Poll once more after the stream's COMPLETED; both must agree."""
    job: Job = unit.need_completed()
    answer = await unit.status(job, logs=True)
    unit.add(judge.stream_agrees(answer, job.final_status or {}))


COMPARE = StepKind(
    name="compare",
    options=no_options(),
    run=compare,
    describe=lambda options, where: [
        "GET  status once more, compared with the stream's last event"
    ],
)
