"""The recording reverse proxy: forwards the queue flow, answers as the upstream did,
and records completed requests (with their media) through a `RecordingStore`."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mockserver.endpoints import (
    EndpointId,
    InvalidEndpointId,
    RequestRoute,
    origin_of,
    parse_request_path,
)
from mockserver.outputs import media_objects
from mockserver.profiles import FAL_QUEUE_URL
from mockserver.recording.store import (
    RecordedExample,
    RecordingStore,
    extension_for,
)
from mockserver.redact import LeakError, Redactor, credential

_log = logging.getLogger("mockserver.record")
# Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus the
# ones httpx recomputes after decoding the body.
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
    }
)
_MAX_MEDIA = 2 * 2**30  # 2 GiB per file: streamed to disk, never held in memory
_MAX_BODY = 50 * 2**20


@dataclass
class _Job:
    endpoint_id: str
    input: dict[str, Any]
    submitted: float
    started: float | None = None
    completed: float | None = None


@dataclass
class RecorderState:
    """What the proxy knows: jobs in flight, what it wrote, what went wrong."""

    jobs: dict[str, _Job] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Recorder:
    """Forward to `upstream`, record into `store`."""

    def __init__(
        self,
        upstream: str,
        store: RecordingStore,
        *,
        public_url: str | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        auth_scheme: str | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.store = store
        self.redactor: Redactor = store.redactor
        self.public_url = public_url.rstrip("/") if public_url else None
        self.timeout = timeout
        self.auth_scheme = auth_scheme  # None: send Authorization on as the client wrote it
        self._transport = transport
        self.state = RecorderState()
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"Recorder(upstream={self.redactor.url(self.upstream)!r}, root={self.store.root})"

    @property
    def client(self) -> httpx.AsyncClient:
        """The client to the upstream (created in the serving event loop)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport, timeout=self.timeout, follow_redirects=False
            )
        return self._client

    async def aclose(self) -> None:
        """Close the upstream client."""
        if self._client is not None:
            await self._client.aclose()

    # -- forwarding -----------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Forward one request; record what it shows."""
        path = request.url.path
        query = request.url.query
        target = self.upstream + path + (f"?{query}" if query else "")
        authorizations = request.headers.getlist("authorization")
        # Every credential is learnt before anything is forwarded, so none of
        # them can reach the disk later (in a prompt, an output, a URL).
        for value in authorizations:
            self.redactor.learn_authorization(value)
        for name, value in request.headers.items():
            if self.redactor.is_secret_name(name):
                self.redactor.learn(value)
        for name, value in request.query_params.multi_items():
            if self.redactor.is_secret_name(name):
                self.redactor.learn(value)
        if len({credential(value) for value in authorizations}) > 1:
            return _failure(
                400,
                f"the request carries {len(authorizations)} Authorization headers with different"
                " credentials: send one (nothing was forwarded)",
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        authorization = headers.pop("authorization", None)
        if authorization:
            if self.auth_scheme and " " in authorization.strip():
                authorization = f"{self.auth_scheme} {authorization.strip().split(' ', 1)[1]}"
            headers["authorization"] = authorization
        body = await request.body()
        if len(body) > _MAX_BODY:
            return JSONResponse({"detail": "Request body too large to record"}, status_code=413)
        self._learn_body(body)
        route = parse_request_path(path)
        action = route.action if route else ("submit" if request.method == "POST" else "other")
        outgoing = self.client.build_request(request.method, target, headers=headers, content=body)
        try:
            upstream = await self.client.send(outgoing, stream=True)
        except httpx.TimeoutException:
            return _failure(504, "the upstream did not answer in time (nothing recorded)")
        except httpx.HTTPError as exc:
            reason = f"the upstream failed: {type(exc).__name__} (nothing recorded)"
            return _failure(502, reason)
        self._count(path, action, upstream.status_code, route)
        if action in ("stream", "other") or not _is_json(upstream):
            return self._stream(upstream, request, route)
        try:
            data = await upstream.aread()
        except httpx.HTTPError as exc:
            return _failure(502, f"the upstream broke off its answer: {type(exc).__name__}")
        finally:
            await upstream.aclose()
        try:
            await self._observe(request, action, route, body, upstream, data)
        except Exception as exc:
            # Recording is a side effect: whatever goes wrong with it, the
            # client still gets the upstream's answer, and the problem is listed.
            self._problem(f"{request.url.path}: recording failed: {type(exc).__name__}: {exc}")
        return Response(
            self._rewrite(data, request),
            status_code=upstream.status_code,
            headers=_answer_headers(upstream.headers),
        )

    def _learn_body(self, body: bytes) -> None:
        """Learn the values of secret-named fields of a JSON body (`api_key`...)."""
        if not body.strip():
            return
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return  # not JSON: the upstream will say so; nothing of it is recorded
        self.redactor.learn_data(data)

    def _stream(
        self, upstream: httpx.Response, request: Request, route: RequestRoute | None
    ) -> Response:
        job = self.state.jobs.get(route.request_id) if route is not None else None
        events = upstream.headers.get("content-type", "").startswith("text/event-stream")

        async def chunks() -> AsyncIterator[bytes]:
            # Decoded bytes: the answer goes out without the upstream's
            # Content-Encoding. Server-sent events go out whole, one at a time,
            # so each is seen (status changes) and rewritten like a JSON answer.
            buffer = b""
            try:
                async for chunk in upstream.aiter_bytes():
                    if not events:
                        yield chunk
                        continue
                    buffer += chunk
                    *complete, buffer = buffer.split(b"\n\n")
                    for event in complete:
                        if job is not None:
                            self._stream_event(job, event)
                        yield self._rewrite(event, request) + b"\n\n"
                if buffer:
                    yield self._rewrite(buffer, request)
            except httpx.HTTPError:
                return  # the client sees the stream end early, as the upstream's did

        return StreamingResponse(
            chunks(),
            status_code=upstream.status_code,
            headers=_answer_headers(upstream.headers),
            background=BackgroundTask(upstream.aclose),
        )

    def _rewrite(self, data: bytes, request: Request) -> bytes:
        """Answers that point at the upstream point at this proxy instead, so
        clients keep coming through it (URLs on queue.fal.run are left for the
        client to rewrite, as it must with the real intermediary)."""
        base = self.public_url or str(request.base_url).rstrip("/")
        return data.replace(self.upstream.encode(), base.encode())

    # -- recording --------------------------------------------------------------------

    def _count(self, path: str, action: str, status: int, route: RequestRoute | None) -> None:
        if action == "other":  # media and anything else: not a protocol exchange
            return
        endpoint = self._endpoint_of(path, route)
        if endpoint is not None:
            codes = self.store.trait(endpoint).status_codes
            key = f"{action} {status}"
            codes[key] = codes.get(key, 0) + 1

    def _endpoint_of(self, path: str, route: RequestRoute | None) -> str | None:
        if route is not None:
            job = self.state.jobs.get(route.request_id)
            return job.endpoint_id if job else None
        try:
            return str(EndpointId.parse(path.strip("/")))
        except InvalidEndpointId:
            return None

    async def _observe(
        self,
        request: Request,
        action: str,
        route: RequestRoute | None,
        body: bytes,
        upstream: httpx.Response,
        data: bytes,
    ) -> None:
        try:
            answer = json.loads(data)
        except ValueError:
            return
        if not isinstance(answer, dict):
            return
        if action == "submit":
            if upstream.status_code == 200:
                self._submitted(request, body, answer)
            return
        job = self.state.jobs.get(route.request_id) if route is not None else None
        if job is None or route is None:
            return
        if action == "status":
            self._saw_status(job, answer.get("status"))
        elif action == "cancel" and upstream.status_code == 202:
            del self.state.jobs[route.request_id]  # a cancelled run is no example
        elif action == "result" and upstream.status_code == 200:
            del self.state.jobs[route.request_id]
            self._saw_status(job, "COMPLETED")
            await self._record(job, answer)

    def _submitted(self, request: Request, body: bytes, answer: dict[str, Any]) -> None:
        request_id = answer.get("request_id")
        endpoint = self._endpoint_of(request.url.path, None)
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return
        if not isinstance(request_id, str) or endpoint is None or not isinstance(payload, dict):
            return
        self.state.jobs[request_id] = _Job(endpoint, payload, time.monotonic())
        traits = self.store.trait(endpoint)
        scheme = self.auth_scheme or request.headers.get("authorization", "").split(" ", 1)[0]
        traits.auth_scheme = scheme if scheme in ("Key", "Bearer") else traits.auth_scheme
        url = answer.get("response_url") or answer.get("status_url")
        if isinstance(url, str):
            origin = origin_of(url)
            traits.url_style = (
                "own-origin"
                if origin == origin_of(self.upstream)
                else "queue.fal.run"
                if origin == FAL_QUEUE_URL
                else "other"
            )

    @staticmethod
    def _saw_status(job: _Job, status: Any) -> None:
        now = time.monotonic()
        if status == "IN_PROGRESS" and job.started is None:
            job.started = now
        elif status == "COMPLETED" and job.completed is None:
            job.completed = now

    def _stream_event(self, job: _Job, event: bytes) -> None:
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                try:
                    self._saw_status(job, json.loads(line[5:]).get("status"))
                except (ValueError, AttributeError):
                    continue

    async def _record(self, job: _Job, output: dict[str, Any]) -> None:
        completed = job.completed or time.monotonic()
        started = job.started or completed
        with self.store.scratch() as scratch:
            media: dict[str, Path] = {}
            for index, item in enumerate(media_objects(output)):
                url = item["url"]
                if url in media:
                    continue
                saved = await self._download(url, item.get("content_type"), scratch, index)
                if saved is not None:
                    media[url] = saved
            example = RecordedExample(
                job.endpoint_id,
                job.input,
                output,
                media,
                queue_seconds=started - job.submitted,
                run_seconds=completed - started,
            )
            try:
                written = self.store.add(example)
            except (LeakError, ValueError, OSError) as exc:
                self._problem(f"{job.endpoint_id}: {exc}")
                return
        _log.info("recorded %s into %s", job.endpoint_id, written)

    async def _download(
        self, url: str, content_type: Any, scratch: Path, index: int
    ) -> Path | None:
        """Stream one media file to disk (no auth: media URLs are public)."""
        target = scratch / f"{index}{extension_for(str(content_type or ''), url)}"
        try:
            async with self.client.stream("GET", url) as response:
                if response.status_code != 200:
                    self._problem(f"media {self.redactor.url(url)}: HTTP {response.status_code}")
                    return None
                size = 0
                with target.open("wb") as handle:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > _MAX_MEDIA:
                            self._problem(
                                f"media {self.redactor.url(url)}: over {_MAX_MEDIA} bytes"
                            )
                            return None
                        handle.write(chunk)
        except httpx.HTTPError as exc:
            self._problem(f"media {self.redactor.url(url)}: {type(exc).__name__}")
            return None
        return target

    def _problem(self, text: str) -> None:
        message = self.redactor.text(text)
        self.state.errors.append(message)
        _log.warning("not recorded: %s", message)


def _is_json(response: httpx.Response) -> bool:
    kind: str = response.headers.get("content-type", "")
    return kind.split(";")[0].strip().endswith("json")


def _answer_headers(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP}


def _failure(status: int, detail: str) -> Response:
    return JSONResponse({"detail": detail}, status_code=status)


def create_recorder_app(recorder: Recorder) -> Starlette:
    """The proxy as an ASGI app: `/_record/status` for people, everything else forwarded."""

    async def status(request: Request) -> Response:
        return JSONResponse(
            {
                "upstream": recorder.redactor.url(recorder.upstream),
                "out": str(recorder.store.root),
                "in_flight": len(recorder.state.jobs),
                "written": sorted({str(p) for p in recorder.store.written}),
                "problems": recorder.state.errors,
            }
        )

    async def forward(request: Request) -> Response:
        return await recorder.handle(request)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await recorder.aclose()

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

    async def client_gone(request: Request, exc: Exception) -> Response:
        # The client left mid-body: nothing to forward, not a server error.
        return Response(status_code=499)

    return Starlette(
        routes=[
            Route("/_record/status", status, methods=["GET"]),
            Route("/{path:path}", forward, methods=methods),
        ],
        exception_handlers={ClientDisconnect: client_gone},
        lifespan=lifespan,
    )
