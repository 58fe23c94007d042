"""Streaming outputs: ``POST {fal.run}/{endpoint_id}/stream`` as `text/event-stream`.

What the official clients' ``stream`` calls. The run is queued and timed like
any other request (same runners, same mock clock, same outcomes); once it
starts, the answer opens and sends the model's partial events
(`mockserver.partials`) as the run progresses, then the full output as the
last event, and closes. A run that ends badly (a model or infrastructure
error, a missed start deadline, a cancellation) answers that error as JSON
with its status code instead, as ``fal.run`` does: the clients raise it.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from mockserver.endpoints import EndpointId, InvalidEndpointId
from mockserver.errors import JobFailed
from mockserver.http import HttpError, header_map, http_error, public_base, read_json_body
from mockserver.mock import FalMock
from mockserver.partials import partial_events
from mockserver.queue import Job, State

SUFFIX = "/stream"
# Wake this long after an event is due, so the clock has surely passed it.
_CLOCK_SLACK_SECONDS = 0.002
# A missed wake-up of a manual clock costs at most this long (real seconds).
_MANUAL_RECHECK_SECONDS = 1.0


def is_stream_target(mock: FalMock, target: str) -> bool:
    """Is `target` (a path on fal.run) a model's stream, not a model itself?"""
    stripped = target.strip("/")
    return stripped.endswith(SUFFIX[1:]) and stripped not in mock.catalog


async def stream_output(request: Request, mock: FalMock, target: str, tenant: str) -> Response:
    """Run `target`'s model and answer its partial outputs as server-sent events."""
    try:
        endpoint_id = str(EndpointId.parse(target.strip("/").removesuffix(SUFFIX)))
    except InvalidEndpointId as exc:
        raise HttpError(404, {"detail": f"Not found: {exc}"}) from None
    if request.method != "POST":
        raise HttpError(405, {"detail": "Method Not Allowed"}, {"Allow": "POST"})
    model = mock.model_for(endpoint_id)
    raw, payload = await read_json_body(request, mock.config.max_body_bytes)
    request.state.logged_body = mock.log_body(raw, payload)
    base = public_base(request, mock.config.public_url)
    fal_headers = {k: v for k, v in header_map(request).items() if k.startswith("x-fal-")}
    job, _ = mock.submit(model, tenant, payload, base_url=base, headers=fal_headers)
    request.state.job_id = job.id
    headers = {"X-Fal-Request-Id": job.id}
    # The answer's status code is decided when the run starts (or, for a run
    # that will fail, when it ends): wait for that on the mock's clock.
    failing = job.outcome.failed
    while job.state is State.IN_QUEUE or (failing and job.state is not State.COMPLETED):
        await _tick(mock, math.inf, job.app_id)
        current = mock.job(job.id, tenant)
        if current is None:
            raise HttpError(404, {"detail": "Request expired"}, headers)
        job = current
    failure = mock.failure_of(job) if job.state is State.COMPLETED else None
    if failure is not None:
        error = http_error(JobFailed(failure))
        error.headers.update(headers)
        raise error
    return StreamingResponse(
        _events(mock, tenant, job),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
    )


async def _events(mock: FalMock, tenant: str, job: Job) -> AsyncIterator[bytes]:
    assert job.started_at is not None
    model = mock.catalog.get(job.endpoint_id)
    shape = model.stream if model is not None else None
    pending = partial_events(shape, job.started_at, job.run_seconds) if shape else []
    keepalive = mock.config.stream_keepalive
    idle = 0.0
    while True:
        now = mock.clock.now()
        while pending and pending[0].at <= now:
            idle = 0.0
            yield _event(json.dumps(pending.pop(0).data, separators=(",", ":")).encode())
        current = mock.job(job.id, tenant)
        if current is None or current.state is State.COMPLETED:
            if current is not None and not current.cancelled and isinstance(current.result, bytes):
                yield _event(current.result)
            return  # cancelled or expired mid-run: the stream just ends
        due = pending[0].at if pending else (current.ends_at or now)
        waited = await _tick(mock, due, job.app_id)
        idle += waited
        if idle >= keepalive:
            idle = 0.0
            yield b": keep-alive\n\n"


async def _tick(mock: FalMock, due: float, app_id: str) -> float:
    """Wait until the mock clock may have reached `due` or the queue changed;
    returns the real seconds waited without news (for keep-alives)."""
    if mock.clock.manual:
        # A manual clock wakes the engine's waiters when it moves.
        wait = min(mock.config.stream_keepalive, _MANUAL_RECHECK_SECONDS)
    else:
        # Nothing about the job changes before `due` or its app's next event
        # (submits and cancels wake us through `changed`): sleep until then.
        due = min(due, mock.next_event_at(app_id))
        remaining = max(due - mock.clock.now(), 0.0) + _CLOCK_SLACK_SECONDS
        wait = min(mock.config.stream_keepalive, remaining)
    if mock.store.shared:
        # Other replicas' submits, cancels and clock steps wake nobody here.
        wait = min(wait, REPLICA_RECHECK_SECONDS)
    woke = await mock.wait_for_change(wait)
    mock.refresh()
    return 0.0 if woke else wait


#: How often a stream served by a replica looks for the other replicas' news.
REPLICA_RECHECK_SECONDS = 0.05


def _event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"
