"""`output_stream` and `upload`: fal's surface beyond the queue (see `check.surface`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mockserver.check import realtime, surface
from mockserver.check.steps.base import Options, StepKind

if TYPE_CHECKING:
    from mockserver.check.unit import Unit


async def _output_stream(unit: Unit, options: Options) -> None:
    await surface.output_stream(unit)


async def _upload(unit: Unit, options: Options) -> None:
    await surface.upload(unit)


OUTPUT_STREAM = StepKind(
    name="output_stream",
    options={
        "description": 'POST {run}/{endpoint}/stream; "not offered" (a note) on 404/405',
        "type": "object",
        "additionalProperties": False,
    },
    run=_output_stream,
    describe=lambda options, where: [
        f"POST {where.base_url.rstrip('/')}/_run/{where.endpoint_id}/stream (fal.run's stream)"
    ],
    billable=lambda options: True,  # fal runs (and bills) the model for a stream
)


async def _start_deadline(unit: Unit, options: Options) -> None:
    await surface.start_deadline(unit, float(options.get("seconds", 1.5)))


START_DEADLINE = StepKind(
    name="start_deadline",
    options={
        "description": "submit with X-Fal-Request-Timeout; the run must not be cut off once"
        " started",
        "type": "object",
        "additionalProperties": False,
        "properties": {"seconds": {"type": "number", "exclusiveMinimum": 1}},
    },
    run=_start_deadline,
    describe=lambda options, where: [
        f"POST {where.submit_url} with X-Fal-Request-Timeout: {options.get('seconds', 1.5):g};"
        " poll until COMPLETED; GET the result"
    ],
    billable=lambda options: True,
)

UPLOAD = StepKind(
    name="upload",
    options={
        "description": 'signed-URL upload and read-back; "not offered" (a note) on 404/405',
        "type": "object",
        "additionalProperties": False,
    },
    run=_upload,
    describe=lambda options, where: [
        "POST storage/upload/initiate, PUT the bytes, GET them back from the file URL"
    ],
)


async def _realtime(unit: Unit, options: Options) -> None:
    await realtime.realtime(unit)


REALTIME = StepKind(
    name="realtime",
    options={
        "description": "POST {rest}/tokens/, then the msgpack WebSocket with the token;"
        ' "not offered" (a note) on 404/405',
        "type": "object",
        "additionalProperties": False,
    },
    run=_realtime,
    describe=lambda options, where: [
        "POST tokens/ for the app's alias; open"
        f" {where.base_url.rstrip('/')}/_run/{where.endpoint_id}/realtime?fal_jwt_token=<token>"
        " (ws), send one msgpack input, read the answer"
    ],
    billable=lambda options: True,  # the input runs (and bills) the model
)
