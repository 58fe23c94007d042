"""`result` (fetch and validate the output), `fidelity` (against the input), `media`
(download every file, read its header: pixel size, duration)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mockserver.check.exchange import json_evidence
from mockserver.check.findings import Finding
from mockserver.check.judge import media as media_judge
from mockserver.check.judge import output as judge
from mockserver.check.results import Verdict
from mockserver.check.steps.base import Abort, Options, StepKind, no_options
from mockserver.outputs import media_objects

if TYPE_CHECKING:
    from mockserver.check.unit import Unit


async def result(unit: Unit, options: Options) -> None:
    """Fetch the result (or, with `early`, ask for it before completion)."""
    job = unit.need_job()
    if options.get("early"):
        answer = await unit.call("GET", job.urls["response"])
        status = await unit.status(job, logs=False) if answer.status_code != 400 else answer
        unit.add(judge.result_early(answer, status))
        return
    unit.need_completed()
    answer = await unit.call("GET", job.urls["response"])
    finding = judge.result(answer, job.request_id)
    unit.add(finding)
    body = answer.json_object()
    if body is None or answer.status_code != 200:
        raise Abort("no result", ran=True)
    job.result = body
    unit.add(judge.output_schema(answer, unit.model.output_schema))


RESULT = StepKind(
    name="result",
    options={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "early": {"type": "boolean", "description": "ask before completion; expect 400"}
        },
    },
    run=result,
    describe=lambda options, where: [
        f"GET  {where.request_url('result')}"
        + (" (before completion)" if options.get("early") else "")
    ],
)


async def fidelity(unit: Unit, options: Options) -> None:
    """Compare the result with the input sent (no request)."""
    job = unit.need_completed()
    if job.result is None:
        raise Abort("no result to compare with the input")
    evidence = json_evidence("GET", job.urls["response"], job.result)
    for finding in judge.fidelity(unit.model, unit.input, job.result, evidence):
        unit.add(finding)


FIDELITY = StepKind(
    name="fidelity",
    options=no_options(),
    run=fidelity,
    describe=lambda options, where: ["compare the result with the input (no request)"],
)


async def media(unit: Unit, options: Options) -> None:
    """Download every media file of the result, as a browser would: without auth."""
    job = unit.need_completed()
    if job.result is None:
        raise Abort("no result with media")
    files = list(media_objects(job.result))
    if not files:
        unit.add(Finding.of("media-download", Verdict.FAIL, "the result names no media files"))
        return
    fetched = [(item, await unit.call("GET", str(item["url"]), auth="none")) for item in files]
    download = media_judge.media_download(fetched)
    unit.add(download)
    if any(answer.status_code != 200 or not answer.body for _, answer in fetched):
        return
    read = media_judge.read(fetched)
    unit.add(media_judge.sizes(read))
    # The length asked is judged with the contract's defaults applied: a
    # request that names no duration asks for the model's default one.
    asked = media_judge.asked_seconds(unit.model.with_defaults(unit.input))
    for finding in (media_judge.durations(read), media_judge.duration_fidelity(read, asked)):
        if finding is not None:
            unit.add(finding)


MEDIA = StepKind(
    name="media",
    options=no_options(),
    run=media,
    describe=lambda options, where: ["GET  each media URL of the result, without auth"],
)
