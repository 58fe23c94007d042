"""The control API under ``/_mock/``: the HTTP twin of `FalMock`'s control methods.

For tests that run the server out of process: reset, move the clock, script
outcomes and faults, and read what the code under test sent. It needs no fal
key; on a non-loopback bind it needs the control token (`mockserver.exposure`).

Every input goes through the one rule of `mockserver.jsonfields` before
anything changes; the answer to a refused call is decided by the error's type:
`InvalidControlInput` 422, `NotManualClock` 409, `HttpError` its own status
(and a service error the status `mockserver.http.http_error` gives it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mockserver.clock import NotManualClock, iso_timestamp
from mockserver.errors import MockError
from mockserver.faults import Fault
from mockserver.http import HttpError, error_response, json_response, read_json_body
from mockserver.jsonfields import InvalidControlInput, count
from mockserver.mock import FalMock
from mockserver.outcomes import Outcome
from mockserver.request_log import RequestFilter

_CONTROL_BODY_LIMIT = 1024 * 1024
Endpoint = Callable[[Request], Awaitable[Response]]


def routes() -> list[BaseRoute]:
    """The control API's routes (mounted at ``/_mock``)."""
    return [
        Route("/health", _guard(_health), methods=["GET"]),
        Route("/reset", _guard(_reset), methods=["POST"]),
        Route("/clock", _guard(_clock), methods=["GET"]),
        Route("/clock/advance", _guard(_advance), methods=["POST"]),
        Route("/requests", _guard(_requests), methods=["GET"]),
        Route("/jobs", _guard(_jobs), methods=["GET"]),
        Route("/jobs/{request_id}", _guard(_job), methods=["GET"]),
        Route("/models", _guard(_models), methods=["GET"]),
        Route("/outcomes", _guard(_outcomes), methods=["POST"]),
        Route("/faults", _guard(_faults), methods=["GET", "POST", "DELETE"]),
        Route("/markers", _guard(_markers), methods=["GET", "POST"]),
        Route("/webhooks", _guard(_webhooks), methods=["GET"]),
        Route("/webhooks/deliver", _guard(_deliver), methods=["POST"]),
    ]


def _guard(endpoint: Endpoint) -> Endpoint:
    async def guarded(request: Request) -> Response:
        if not _mock(request).config.control.allows(request.headers.get("authorization")):
            return json_response(
                401,
                {"detail": "The control API needs 'Authorization: Bearer <control token>'"},
                {"WWW-Authenticate": "Bearer"},
            )
        try:
            return await endpoint(request)
        except (HttpError, MockError) as error:
            return error_response(error)
        except InvalidControlInput as exc:
            return json_response(422, {"detail": str(exc)})
        except NotManualClock as exc:
            return json_response(409, {"detail": str(exc)})

    guarded.__name__ = endpoint.__name__
    return guarded


def _answer(request: Request, body: Any) -> Response:
    """A 200 whose every string went through the mock's learnt keys: a key pasted
    into a prompt shows up masked in jobs, requests and webhook bodies alike."""
    return json_response(200, _mock(request).redactor.strings(body))


def _mock(request: Request) -> FalMock:
    mock: FalMock = request.app.state.mock
    return mock


async def _body(request: Request) -> dict[str, Any]:
    # Lenient about Content-Type: `curl -d '{...}'` sends a form type by default.
    _, data = await read_json_body(request, _CONTROL_BODY_LIMIT, strict_type=False)
    if not isinstance(data, dict):
        raise InvalidControlInput("the body must be a JSON object")
    return data


def _clock_json(mock: FalMock) -> dict[str, Any]:
    now = mock.clock.now()
    return {"now": iso_timestamp(now), "timestamp": now, "manual": mock.clock.manual}


async def _health(request: Request) -> Response:
    mock = _mock(request)
    return _answer(
        request,
        {
            "status": "ok",
            "profile": mock.config.profile.name,
            "auth_scheme": mock.config.profile.auth_scheme,
            "models": len(mock.catalog),
            "jobs": mock.job_count,
            "clock": _clock_json(mock),
        },
    )


async def _reset(request: Request) -> Response:
    _mock(request).reset()
    return _answer(request, {"status": "reset"})


async def _clock(request: Request) -> Response:
    return _answer(request, _clock_json(_mock(request)))


async def _advance(request: Request) -> Response:
    data = await _body(request)
    mock = _mock(request)
    seconds: Any = data.get("seconds")
    # In a thread: deliveries that come due are plain blocking HTTP (maybe to us).
    # The clock checks the step first: a refused one moves nothing.
    await asyncio.to_thread(mock.advance, seconds)
    return _answer(request, _clock_json(mock))


async def _requests(request: Request) -> Response:
    """The request log, optionally narrowed: ``?action=``, ``?request_id=``, and
    ``?marker=`` (the submits whose body holds the marker, and every request
    about the ids they were given)."""
    selected = RequestFilter.from_query(dict(request.query_params)).select(_mock(request).requests)
    return _answer(request, [e.to_json() for e in selected])


async def _jobs(request: Request) -> Response:
    mock = _mock(request)
    return _answer(request, [mock.job_summary(job) for job in mock.jobs()])


async def _job(request: Request) -> Response:
    mock = _mock(request)
    request_id = request.path_params["request_id"]
    job = mock.job(request_id)
    if job is None:
        raise HttpError(404, {"detail": f"Request {request_id!r} not found"})
    return _answer(request, mock.job_summary(job))


async def _models(request: Request) -> Response:
    return _answer(
        request,
        [
            {"endpoint_id": m.endpoint_id, "title": m.title, "output": m.output}
            for m in _mock(request).catalog
        ],
    )


async def _outcomes(request: Request) -> Response:
    """``{"endpoint_id": "fal-ai/flux-1/dev"|"*", "outcome": {...}, "times": 1|null}``."""
    data = await _body(request)
    mock = _mock(request)
    endpoint_id = data.get("endpoint_id", "*")
    if not isinstance(endpoint_id, str) or (endpoint_id != "*" and endpoint_id not in mock.catalog):
        shown = repr(endpoint_id)[:200]  # a control answer never echoes a megabyte back
        raise InvalidControlInput(f"endpoint_id must be '*' or a known endpoint, got {shown}")
    outcome = Outcome.from_json(data.get("outcome", {}))
    # Checked before anything changes; kept as a counter, however large.
    times = count(data.get("times", 1), "times", none="every later request")
    if times is None:
        mock.set_outcome(endpoint_id, outcome)
    else:
        mock.next_outcome(endpoint_id, outcome, times)
    return _answer(
        request, {"endpoint_id": endpoint_id, "outcome": outcome.to_json(), "times": times}
    )


async def _faults(request: Request) -> Response:
    mock = _mock(request)
    if request.method == "POST":
        fault = mock.add_fault(Fault.from_json(await _body(request)))
        return _answer(request, fault.to_json())
    if request.method == "DELETE":
        mock.clear_faults()
    return _answer(request, [f.to_json() for f in mock.pending_faults()])


async def _webhooks(request: Request) -> Response:
    """Every delivery attempt so far, and what is scheduled."""
    mock = _mock(request)
    attempts = [a.to_json() for a in mock.webhook_attempts]
    return _answer(request, {"attempts": attempts, "pending": mock.pending_webhooks()})


async def _deliver(request: Request) -> Response:
    """Send every due delivery now (the background worker would, within 50 ms)."""
    made = await asyncio.to_thread(_mock(request).deliver_webhooks)
    return _answer(request, [a.to_json() for a in made])


async def _markers(request: Request) -> Response:
    """POST ``{"prefix": P}`` watches markers ``P-<word>`` in accepted submits;
    GET ``?prefix=P`` answers marker -> the jobs (request id, key fingerprint, digests
    of the input's fields, cancels received)."""
    watch = _mock(request).markers
    if request.method == "POST":
        prefix = (await _body(request)).get("prefix")
        watch.watch(prefix)  # type: ignore[arg-type]  # checked there: InvalidControlInput -> 422
        return _answer(request, {"prefix": prefix, "markers": watch.seen(str(prefix))})
    prefix = request.query_params.get("prefix", "")
    seen = watch.seen(prefix)
    if seen is None:
        raise HttpError(404, {"detail": f"prefix {prefix!r} is not watched: POST it first"})
    return _answer(request, {"prefix": prefix, "markers": seen})
