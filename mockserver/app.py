"""The Starlette app: thin HTTP handlers over `FalMock`.

Routing is by hand (one catch-all route) because fal's paths are not a fixed
pattern: endpoint ids have any depth, namespaces and one-segment forms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Iterator
from functools import lru_cache
from typing import Any

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mockserver import control, openapi, proxy, realtime, storage, stream
from mockserver.endpoints import (
    EndpointId,
    InvalidEndpointId,
    RequestRoute,
    full_id_request_path,
    parse_request_path,
)
from mockserver.errors import MockError, RequestNotFound
from mockserver.http import (
    DroppedConnection,
    HttpError,
    JSONBytes,
    error_response,
    header_map,
    hostname,
    http_error,
    json_response,
    parse_flag,
    public_base,
    read_json_body,
    validation_error,
)
from mockserver.mock import FalMock, MockConfig, RecordedRequest
from mockserver.queue import Job, State
from mockserver.redact import key_fingerprints, redact_headers, redact_query
from mockserver.store import StoreError

RUN_PREFIX = "/_run/"
#: What the request log says of a request whose client left mid-body (nginx's code).
CLIENT_CLOSED_REQUEST = 499


class _ProtocolPath(Convertor[str]):
    """Any path except the mock's own (control, media, storage, OpenAPI, proxy, tokens)."""

    regex = (
        r"(?!_mock(?:/|$)|files/|storage/|openapi\.json$|\.well-known/"
        r"|api/_?fal/proxy$|tokens/?$).*"
    )

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("falpath", _ProtocolPath())
_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
_METHODS = {"result": "GET", "status": "GET", "stream": "GET", "cancel": "PUT"}
# Wake this long after an event is due, so the clock has surely passed it.
_CLOCK_SLACK_SECONDS = 0.002
_WEBHOOK_POLL_SECONDS = 0.05
_log = logging.getLogger("mockserver.webhooks")


def create_app(mock: FalMock | None = None, config: MockConfig | None = None) -> Starlette:
    """A Starlette app serving `mock` (or a new `FalMock` built from `config`)."""
    mock = mock or FalMock(config)
    routes: list[BaseRoute] = [
        # First, and by a path pattern that leaves out the reserved prefixes:
        # status polls (the hot path) match at once instead of after every
        # other route.
        # Every method: the handlers answer 405 with the Allow header of the
        # operation the path names (Starlette's would list this route's).
        Route("/{path:falpath}", _protocol, methods=list(_ALL_METHODS)),
        # Media downloads next, for the same reason (a GET of another /files/
        # path still reaches the storage routes: only a full match wins).
        Route("/files/{bucket}/{name}", _media, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/.well-known/jwks.json", _jwks, methods=["GET"]),
        Mount("/_mock", routes=control.routes()),
        *storage.routes(),
        *proxy.routes(),
        *realtime.routes(),
    ]
    app = Starlette(
        routes=routes,
        # A replica first catches up with the others: it answers as one process would.
        middleware=[Middleware(_CatchUp)] if mock.store.shared else [],
        exception_handlers={
            HTTPException: _http_exception,
            ClientDisconnect: _client_gone,
            StoreError: _store_down,
            Exception: _server_error,
        },
        lifespan=_lifespan,
    )
    app.state.mock = mock
    return app


class _CatchUp:
    """Before each request, apply what the other replicas changed since the last
    one; a store that cannot be reached is a 503, not a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            try:
                # The app's mock of the moment (a pooled app is lent to another).
                scope["app"].state.mock.refresh()
            except StoreError as error:
                _log.warning("%s", error)
                if scope["type"] == "http":
                    await json_response(503, {"detail": _STORE_DOWN})(scope, receive, send)
                    return
                raise
        await self.app(scope, receive, send)


_STORE_DOWN = "The mock's shared store is unavailable; try again later"


async def _store_down(request: Request, exc: Exception) -> Response:
    _log.warning("%s", exc)
    return json_response(503, {"detail": _STORE_DOWN}, {"Retry-After": "1"})


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """While served: deliver due webhooks in the background."""
    worker = asyncio.create_task(_deliver_webhooks(app.state.mock))
    try:
        yield
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        app.state.mock.stop_webhook_senders()


async def _deliver_webhooks(mock: FalMock) -> None:
    # Deliveries are plain blocking HTTP (the receiver may be this very
    # server), sent by the dispatcher's own threads, several at once; the loop
    # only hands over due work and never waits for an answer, so a stalled
    # receiver delays no later webhook.
    store_down = False
    while True:
        try:
            if mock.webhooks_due():
                mock.start_webhooks()
            store_down = False
        except StoreError as error:  # one line when the shared store goes away
            if not store_down:
                _log.warning("webhooks wait for the shared store: %s", error)
            store_down = True
        except Exception:  # never let one bad delivery stop the worker
            _log.exception("webhook delivery failed")
        await asyncio.sleep(_WEBHOOK_POLL_SECONDS)


async def _jwks(request: Request) -> Response:
    """The public key webhooks are signed with (fal: rest.alpha.fal.ai/.well-known/jwks.json)."""
    return json_response(200, _mock(request).webhook_jwks())


def _state(request: Request, name: str) -> Any:
    # Not getattr(request.state, name, None): a missing attribute raises inside
    # Starlette's State, a measurable cost on every submit.
    state = request.scope.get("state")
    return state.get(name) if state else None


def _query(request: Request, name: str) -> str | None:
    # Parsing an empty query string still costs; status polls mostly have none.
    return request.query_params.get(name) if request.scope["query_string"] else None


def _mock(request: Request) -> FalMock:
    mock: FalMock = request.app.state.mock
    return mock


async def _protocol(request: Request) -> Response:
    mock = _mock(request)
    path = "/" + request.path_params["path"]
    headers = header_map(request)
    run_host = hostname(headers.get("host", "")) in mock.config.run_hosts
    if path.startswith(RUN_PREFIX) or run_host:
        target = path.removeprefix(RUN_PREFIX.rstrip("/")) if not run_host else path
        action = "run_stream" if stream.is_stream_target(mock, target) else "run"
        return await _handle(request, headers, mock, action, target, None)
    route = parse_request_path(path)
    if route is not None:
        return await _handle(request, headers, mock, route.action, route.app_id, route)
    return await _handle(request, headers, mock, "submit", path, None)


async def _handle(
    request: Request,
    headers: dict[str, str],
    mock: FalMock,
    action: str,
    target: str,
    route: RequestRoute | None,
) -> Response:
    """Run one protocol request: faults, then the handler; record it either way."""
    endpoint: str | None = route.app_id if route is not None else None
    if route is None:
        of = target.rstrip("/").removesuffix(stream.SUFFIX) if action == "run_stream" else target
        endpoint = mock.endpoint_of(of)
    status_code = 500
    try:
        fault = mock.take_fault(action, endpoint)
        if fault is not None:
            if fault.latency:
                await asyncio.sleep(fault.latency)
            if fault.drop:
                status_code = 0
                return DroppedConnection()
            if fault.status_code is not None:
                extra = {}
                if fault.retry_after is not None:
                    extra["Retry-After"] = f"{fault.retry_after:g}"
                detail = fault.detail or f"Injected fault: HTTP {fault.status_code}"
                status_code = fault.status_code
                if route is None and request.method == "POST":
                    await _log_refused_body(request, mock)
                return json_response(fault.status_code, {"detail": detail}, extra)
        if route is not None:
            response = await _request_operation(request, headers, mock, route)
        elif action == "run_stream":
            token = _query(request, "fal_jwt_token")  # js client connection mode
            tenant = (
                realtime.token_tenant(mock, token, endpoint or "")
                if token and endpoint
                else mock.authenticate(headers.get("authorization"))
            )
            response = await stream.stream_output(request, mock, target, tenant)
        else:
            response = await _submit(request, headers, mock, target, sync=action == "run")
        status_code = response.status_code
        return response
    except (HttpError, MockError) as exc:
        error = http_error(exc)
        status_code = error.status_code
        return error_response(error)
    except ClientDisconnect:
        status_code = CLIENT_CLOSED_REQUEST
        raise
    finally:
        mock.record(
            RecordedRequest(
                time=mock.clock.now(),
                method=request.method,
                path=request.scope["path"],
                query=redact_query(request.query_params) if request.scope["query_string"] else {},
                headers=_redacted_headers(tuple(headers.items())),
                action=action,
                endpoint_id=endpoint,
                request_id=route.request_id if route else _state(request, "job_id"),
                body=None if route else _state(request, "logged_body"),
                status_code=status_code,
                key_fingerprints=key_fingerprints(headers.get("authorization")),
            )
        )


@lru_cache(maxsize=256)
def _redacted_headers_cached(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return redact_headers(headers)


def _redacted_headers(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The headers the request log keeps. Cached: a client's polls repeat the
    same headers, and the policy (names, no learnt values) never changes.
    A copy each time, so no two log entries share a mutable dict."""
    return dict(_redacted_headers_cached(headers))


async def _log_refused_body(request: Request, mock: FalMock) -> None:
    """Keep the body of a submit a fault refused: the log shows what a client
    retried (a checker matches it to the client's request by its content)."""
    with contextlib.suppress(HttpError):
        raw, payload = await read_json_body(request, mock.config.max_body_bytes)
        request.state.logged_body = mock.log_body(raw, payload)


# What `GET /` says: nothing is served there, so say where to look.
_INDEX_DETAIL = (
    "Not Found: this is the fal queue mock. Submit with POST /{endpoint_id} (GET /_mock/models"
    " lists them); health at /_mock/health, the API at /openapi.json; how to use it: README.md"
    " of fal-queue-harness"
)


async def _submit(
    request: Request, headers: dict[str, str], mock: FalMock, target: str, *, sync: bool
) -> Response:
    if not target.strip("/"):
        raise HttpError(404, {"detail": _INDEX_DETAIL})
    try:
        endpoint_id = str(EndpointId.parse(target))
    except InvalidEndpointId as exc:
        raise HttpError(404, {"detail": f"Not found: {exc}"}) from None
    if request.method != "POST":
        if endpoint_id in mock.catalog:
            raise HttpError(405, {"detail": "Method Not Allowed"}, {"Allow": "POST"})
        fal_path = full_id_request_path(target)
        if fal_path is not None:
            detail = (
                "Not Found: request URLs use only the owner/alias of the endpoint id, not"
                f" the full id: {fal_path}"
            )
            raise HttpError(404, {"detail": detail})
        raise HttpError(404, {"detail": "Not Found"})
    tenant = mock.authenticate(headers.get("authorization"))
    model = mock.model_for(endpoint_id)
    raw, payload = await read_json_body(request, mock.config.max_body_bytes)
    # The log keeps no secret: secret-named fields, and every key the mock has
    # seen (each part of an id:secret key) wherever it was pasted.
    request.state.logged_body = mock.redactor.data(mock.log_body(raw, payload))
    base = public_base(request, mock.config.public_url)
    fal_headers = {k: v for k, v in headers.items() if k.startswith("x-fal-")}
    webhook = _query(request, "fal_webhook")
    job, position = mock.submit(
        model, tenant, payload, base_url=base, headers=fal_headers, webhook=webhook, sync=sync
    )
    request.state.job_id = job.id
    if sync:
        with _about(job.id):
            _, body = mock.result(job)
        return JSONBytes(body, 200, {"X-Fal-Request-Id": job.id})
    # fal's gateway id; the mock has one id per request, as fal mostly shows.
    answer: dict[str, Any] = {
        "status": "IN_QUEUE",
        "request_id": job.id,
        "gateway_request_id": job.id,
        **mock.urls(job, base),
    }
    answer["queue_position"] = position
    return json_response(200, answer, {"X-Fal-Request-Id": job.id})


async def _request_operation(
    request: Request, headers: dict[str, str], mock: FalMock, route: RequestRoute
) -> Response:
    expected = _METHODS[route.action]
    if request.method != expected:
        raise HttpError(405, {"detail": "Method Not Allowed"}, {"Allow": expected})
    if not _is_uuid(route.request_id):
        raise validation_error(
            ["path", "request_id"], "Input should be a valid UUID", "uuid_parsing"
        )
    tenant = mock.authenticate(headers.get("authorization"))
    try:
        job = mock.find(tenant, route.app_id, route.request_id)
    except RequestNotFound as exc:
        if route.action == "cancel":  # cancel answers carry a status, as fal's do
            raise HttpError(404, {"status": "NOT_FOUND", **http_error(exc).body}) from None
        raise
    with _about(job.id):
        return await _answer_about(request, mock, route, tenant, job)


@contextlib.contextmanager
def _about(request_id: str) -> Iterator[None]:
    """Every answer about a request carries its id, error answers included."""
    try:
        yield
    except (HttpError, MockError) as exc:
        error = http_error(exc)
        error.headers.setdefault("X-Fal-Request-Id", request_id)
        raise error from None


async def _answer_about(
    request: Request, mock: FalMock, route: RequestRoute, tenant: str, job: Job
) -> Response:
    headers = {"X-Fal-Request-Id": job.id}
    base = public_base(request, mock.config.public_url)
    if route.action == "status":
        with_logs = parse_flag(_query(request, "logs"), "logs")
        code, encoded = mock.status_json(job, base, with_logs=with_logs)
        return JSONBytes(encoded, code, headers)
    if route.action == "stream":
        with_logs = parse_flag(_query(request, "logs"), "logs")
        return StreamingResponse(
            _status_events(mock, tenant, job.id, base, with_logs),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
        )
    if route.action == "cancel":
        code, body = mock.cancel(job)
        return json_response(code, body, headers)
    code, result = mock.result(job)
    return JSONBytes(result, code, headers)


async def _status_events(
    mock: FalMock, tenant: str, request_id: str, base: str, with_logs: bool
) -> AsyncIterator[str]:
    """One SSE event per change of state, position or logs; closes after COMPLETED."""
    sent: tuple[State, int | None] | None = None
    logs_sent = 0
    keepalive = mock.config.stream_keepalive
    idle = 0.0
    while True:
        job = mock.job(request_id, tenant)
        if job is None:  # expired mid-stream (or reset): nothing more to say
            yield _event(http_error(RequestNotFound(request_id)).body)
            return
        now = mock.clock.now()
        position = mock.queue_position(job) if job.state is State.IN_QUEUE else None
        visible = len(job.visible_logs(now)) if with_logs else 0
        # Cheap test first: a wake-up for another job's news costs no answer.
        if (job.state, position) != sent or visible > logs_sent:
            _, body = mock.status_body(job, base, with_logs=with_logs, logs_from=logs_sent)
            sent = (job.state, body.get("queue_position"))
            logs_sent += len(body["logs"]) if with_logs else 0
            idle = 0.0
            yield _event(body)
            if job.state is State.COMPLETED:
                return
        wait = keepalive - idle
        if not mock.clock.manual:
            # A real clock moves without telling anyone, but nothing about this
            # job can change before its app's next event (or its next log line):
            # sleep until then. Submits and cancels wake us through `changed`.
            next_log = _next_log_at(job, logs_sent) if with_logs else math.inf
            due = min(mock.next_event_at(job.app_id), next_log)
            wait = min(wait, max(due - now, 0.0) + _CLOCK_SLACK_SECONDS)
        if mock.store.shared:
            # Other replicas' submits, cancels and clock steps wake nobody here.
            wait = min(wait, stream.REPLICA_RECHECK_SECONDS)
        woke = await mock.wait_for_change(max(wait, 0.0))
        mock.refresh()
        if not woke:
            idle += wait
            if idle >= keepalive:
                idle = 0.0
                yield ": keep-alive\n\n"


def _next_log_at(job: Job, logs_sent: int) -> float:
    """When the job's next unsent log line appears (infinity if none will)."""
    if job.started_at is None or logs_sent >= len(job.logs):
        return math.inf
    return job.started_at + job.logs[logs_sent].at * job.run_seconds


def _event(body: Any) -> str:
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"


async def _media(request: Request) -> Response:
    mock = _mock(request)
    name = request.path_params["name"]
    fault = mock.take_fault("media", None)
    if fault is not None and fault.drop:
        return DroppedConnection()
    if fault is not None and fault.status_code is not None:
        return json_response(fault.status_code, {"detail": fault.detail or "Injected fault"})
    found = mock.media(name)
    if found is None:
        return json_response(404, {"detail": "File not found (unknown or expired)"})
    content_type, file_name, data = found
    return Response(
        data,
        media_type=content_type,
        headers={
            "Content-Disposition": f'inline; filename="{file_name}"',
            "Cache-Control": "public, max-age=3600",
        },
    )


async def _openapi(request: Request) -> Response:
    return json_response(200, openapi.document(_mock(request).catalog))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    return json_response(exc.status_code, {"detail": exc.detail}, headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client left mid-body: nobody reads this answer, and it is not a
    # server error (no traceback in the log, no 500 in the request log).
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Never a traceback to the client; the server log still has it.
    return json_response(500, {"detail": "Internal server error"})


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _is_uuid(value: str) -> bool:
    return _UUID.match(value) is not None
