"""The client's protocol logic, without I/O: URLs, parsing, retry decisions,
deadlines, download names.

Both the sync and the async client call these, so they behave identically and
differ only in how they wait and do I/O (the httpx pattern).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal, get_args
from urllib.parse import quote, urlsplit

import httpx

from mockserver.client.errors import (
    FalError,
    FalHTTPError,
    FalProtocolError,
    FalTimeoutError,
    FalTransportError,
    FalValidationError,
)
from mockserver.client.types import Completed, InProgress, Queued, QueueHandle, Status
from mockserver.endpoints import Action, EndpointId, InvalidEndpointId, request_path, rewrite_url
from mockserver.outputs import media_objects
from mockserver.priority import PRIORITIES, PRIORITY_HEADER, Priority

AuthScheme = Literal["Key", "Bearer"]
#: How `subscribe` follows a request: polling its status, or its SSE status stream.
SubscribeMode = Literal["polling", "streaming"]
SUBSCRIBE_MODES: tuple[SubscribeMode, ...] = get_args(SubscribeMode)
#: A download's progress: (file name, bytes so far, total bytes or None).
Progress = Callable[[str, int, int | None], None]


def check_mode(mode: str) -> None:
    """ValueError for a `subscribe` mode that does not exist (before anything is sent:
    a typo must not silently fall back to polling)."""
    if mode not in SUBSCRIBE_MODES:
        raise ValueError(f"mode must be one of {', '.join(SUBSCRIBE_MODES)}; got {mode!r}")


def submit_request(
    endpoint_id: str,
    *,
    webhook_url: str | None,
    priority: Priority | None,
    headers: dict[str, str] | None,
) -> tuple[dict[str, str] | None, dict[str, str]]:
    """(query, headers) of a submit; ValueError for an unknown priority (before
    anything is sent: the server would refuse it, a typo is the caller's bug)."""
    endpoint(endpoint_id)
    if priority is not None and priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}; got {priority!r}")
    extra = dict(headers or {})
    if priority:
        extra[PRIORITY_HEADER] = priority
    return ({"fal_webhook": webhook_url} if webhook_url else None), extra


RETRY_STATUSES = frozenset({429, 502, 503, 504})
_SNIPPET = 200


@dataclass(frozen=True)
class ClientSettings:
    """How a client reaches the queue. The key never appears in its repr."""

    base_url: str = "https://queue.fal.run"
    key: str = field(default="", repr=False)
    auth_scheme: AuthScheme = "Key"
    timeout: float = 30.0
    max_retries: int = 3
    backoff: float = 0.1
    max_backoff: float = 10.0
    retry_submit: bool = False
    rewrite_urls: bool = True
    #: Where models run and stream (fal: https://fal.run); default derived from base_url.
    run_url: str = ""
    #: fal's REST API (storage, tokens; fal: https://rest.fal.ai); default derived too.
    rest_url: str = ""
    #: Uploads larger than this go in parts of `part_size` bytes (fal's JS client: 90 MiB).
    multipart_threshold: int = 90 * 1024 * 1024
    part_size: int = 10 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.auth_scheme not in ("Key", "Bearer"):
            raise ValueError("auth_scheme must be 'Key' or 'Bearer'")
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")

    @property
    def run_base(self) -> str:
        """`run_url`, or fal.run for fal's queue, or this mock's ``/_run`` on any other base."""
        if self.run_url:
            return self.run_url.rstrip("/")
        if urlsplit(self.base_url).hostname == "queue.fal.run":
            return "https://fal.run"
        return self.base_url.rstrip("/") + "/_run"

    @property
    def rest_base(self) -> str:
        """`rest_url`, or rest.fal.ai for fal's queue, or the base URL itself."""
        if self.rest_url:
            return self.rest_url.rstrip("/")
        if urlsplit(self.base_url).hostname == "queue.fal.run":
            return "https://rest.fal.ai"
        return self.base_url.rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header (none without a key)."""
        return {"Authorization": f"{self.auth_scheme} {self.key}"} if self.key else {}


def endpoint(endpoint_id: str) -> EndpointId:
    """Parse an endpoint id, as a client error when malformed."""
    try:
        return EndpointId.parse(endpoint_id)
    except InvalidEndpointId as exc:
        raise FalError(str(exc)) from None


def submit_url(base_url: str, endpoint_id: str) -> str:
    """Where a submit goes: the full endpoint id on the base."""
    return base_url.rstrip("/") + "/" + str(endpoint(endpoint_id))


def build_url(base_url: str, endpoint_id: str, request_id: str, action: Action = "result") -> str:
    """A request URL built from the endpoint id (owner/alias only), as fal's clients do."""
    path = request_path(endpoint(endpoint_id).app_id, quote(request_id, safe=""), action)
    return base_url.rstrip("/") + path


def handle_for(base_url: str, endpoint_id: str, request_id: str) -> QueueHandle:
    """A handle for a known request id, with URLs built rather than returned."""
    return QueueHandle(
        request_id=request_id,
        endpoint_id=endpoint_id,
        response_url=build_url(base_url, endpoint_id, request_id),
        status_url=build_url(base_url, endpoint_id, request_id, "status"),
        cancel_url=build_url(base_url, endpoint_id, request_id, "cancel"),
    )


def stream_url(settings: ClientSettings, endpoint_id: str) -> str:
    """Where a streamed run goes: ``{run}/{endpoint_id}/stream``."""
    return f"{settings.run_base}/{endpoint(endpoint_id)}/stream"


def initiate_url(settings: ClientSettings, *, multipart: bool) -> str:
    """Where a signed-URL upload begins (fal's CDN storage type)."""
    kind = "initiate-multipart" if multipart else "initiate"
    return f"{settings.rest_base}/storage/upload/{kind}?storage_type=fal-cdn-v3"


def parse_initiate(response: httpx.Response) -> tuple[str, str]:
    """(upload_url, file_url) of an initiate answer."""
    raise_for_error(response)
    data = json_body(response)
    if not isinstance(data, dict):
        raise FalProtocolError(f"{describe(response)}: expected a JSON object")
    return _field(data, "upload_url", str, response), _field(data, "file_url", str, response)


def part_url(upload_url: str, suffix: str) -> str:
    """``{upload_url}/{suffix}`` keeping the upload URL's query, as fal's JS client builds it."""
    parts = urlsplit(upload_url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}/{suffix}{query}"


def parse_part(response: httpx.Response, number: int) -> dict[str, Any]:
    """The ``{partNumber, etag}`` of an uploaded part (from the body, else the ETag header)."""
    raise_for_error(response)
    etag = response.headers.get("etag")
    if "json" in response.headers.get("content-type", ""):
        data = json_body(response)
        if isinstance(data, dict) and isinstance(data.get("etag"), str):
            etag = data["etag"]
    if not etag:
        raise FalProtocolError(f"{describe(response)}: no etag for part {number}")
    return {"partNumber": number, "etag": etag}


def event_data(data: str, response: httpx.Response) -> Any:
    """One SSE event's JSON data."""
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        raise FalProtocolError(
            f"{describe(response)}: an SSE event's data is not JSON: {data[:120]!r}"
        ) from None


def describe(response: httpx.Response) -> str:
    """``METHOD URL -> status`` (the URL without its query) for error messages."""
    request = response.request
    return f"{request.method} {request.url.copy_with(query=None)} -> {response.status_code}"


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or a protocol error that shows what came instead."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        snippet = response.text[:_SNIPPET].strip().replace("\n", " ")
        content_type = response.headers.get("content-type", "no content type")
        raise FalProtocolError(
            f"{describe(response)}: expected JSON, got {content_type} {snippet!r}",
            status_code=response.status_code,
        ) from None


def raise_for_error(response: httpx.Response, request_id: str | None = None) -> None:
    """Turn an error answer into `FalHTTPError` (`FalValidationError` for a 422)."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if detail is None:
        detail = response.text[:_SNIPPET].strip() or None
    error_type = (
        body.get("error_type") if isinstance(body, dict) else None
    ) or response.headers.get("x-fal-error-type")
    kind = FalValidationError if response.status_code == 422 else FalHTTPError
    summary = detail if isinstance(detail, str) else json.dumps(detail)[:_SNIPPET]
    raise kind(
        f"{describe(response)}: {summary}",
        status_code=response.status_code,
        detail=detail,
        error_type=error_type,
        request_id=request_id or response.headers.get("x-fal-request-id"),
    )


def _field(data: dict[str, Any], name: str, kind: type, response: httpx.Response) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        got = "missing" if name not in data else f"{type(value).__name__} {value!r}"[:80]
        raise FalProtocolError(
            f"{describe(response)}: '{name}' should be {kind.__name__}, got {got}",
            status_code=response.status_code,
            request_id=data.get("request_id") if isinstance(data.get("request_id"), str) else None,
        )
    return value


def parse_handle(
    response: httpx.Response, settings: ClientSettings, endpoint_id: str
) -> QueueHandle:
    """The handle of a submit answer; returned URLs are moved onto the base URL."""
    raise_for_error(response)
    data = json_body(response)
    if not isinstance(data, dict):
        raise FalProtocolError(f"{describe(response)}: expected a JSON object, got {data!r:.80}")
    urls = {
        name: _field(data, name, str, response)
        for name in ("response_url", "status_url", "cancel_url")
    }
    if settings.rewrite_urls:
        urls = {name: rewrite_url(url, settings.base_url) for name, url in urls.items()}
    position = data.get("queue_position")
    return QueueHandle(
        request_id=_field(data, "request_id", str, response),
        endpoint_id=endpoint_id,
        queue_position=position if isinstance(position, int) else None,
        **urls,
    )


def parse_status(response: httpx.Response, request_id: str | None = None) -> Status:
    """A status answer (polled or one SSE event's data) as a typed status."""
    raise_for_error(response, request_id)
    data = json_body(response)
    return status_from_json(data, response)


def status_from_json(data: Any, response: httpx.Response) -> Status:
    """Check a status object against the protocol and type it."""
    if not isinstance(data, dict):
        raise FalProtocolError(f"{describe(response)}: a status is a JSON object, got {data!r:.80}")
    state = data.get("status")
    if state not in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED"):
        raise FalProtocolError(
            f"{describe(response)}: unknown status {state!r}"
            " (expected IN_QUEUE, IN_PROGRESS or COMPLETED)",
            status_code=response.status_code,
        )
    if state == "IN_QUEUE":
        return Queued(position=_field(data, "queue_position", int, response), raw=data)
    if "logs" not in data:
        raise FalProtocolError(
            f"{describe(response)}: a {state} status must carry the 'logs' key"
            " (null when logs were not asked for)",
            status_code=response.status_code,
        )
    logs = data["logs"]
    if logs is not None and not isinstance(logs, list):
        raise FalProtocolError(f"{describe(response)}: 'logs' should be a list or null")
    if state == "IN_PROGRESS":
        return InProgress(logs=logs, raw=data)
    metrics = data.get("metrics")
    return Completed(
        logs=logs,
        metrics=metrics if isinstance(metrics, dict) else {},
        error=data.get("error"),
        error_type=data.get("error_type"),
        raw=data,
    )


def parse_result(response: httpx.Response, request_id: str) -> dict[str, Any]:
    """The output of a completed request."""
    raise_for_error(response, request_id)
    data = json_body(response)
    if not isinstance(data, dict):
        raise FalProtocolError(f"{describe(response)}: a result is a JSON object, got {data!r:.80}")
    return data


def parse_cancel(response: httpx.Response, request_id: str) -> str:
    """The status a cancel answered with (CANCELLATION_REQUESTED or ALREADY_COMPLETED)."""
    if response.status_code == 400:
        body = json_body(response)
        if isinstance(body, dict) and body.get("status") == "ALREADY_COMPLETED":
            return "ALREADY_COMPLETED"
    raise_for_error(response, request_id)
    body = json_body(response)
    status = body.get("status") if isinstance(body, dict) else None
    return status if isinstance(status, str) else "CANCELLATION_REQUESTED"


class Retries:
    """The retry decisions of one call: after each try, how long to wait before
    the next one, or None to stop (answer the response, or raise)."""

    def __init__(self, settings: ClientSettings, rng: random.Random, *, idempotent: bool) -> None:
        self._settings = settings
        self._rng = rng
        self._idempotent = idempotent
        self._attempt = 0

    def after_response(self, response: httpx.Response) -> float | None:
        """The wait before trying again after `response` (None: it is the answer)."""
        if self._attempt >= self._settings.max_retries or not should_retry_status(
            response, self._idempotent
        ):
            return None
        return self._next(response)

    def after_error(self, exc: httpx.RequestError) -> float | None:
        """The wait before trying again after a transport error (None: give up)."""
        if self._attempt >= self._settings.max_retries or not should_retry_transport(
            exc, self._idempotent
        ):
            return None
        return self._next(None)

    def _next(self, response: httpx.Response | None) -> float:
        delay = retry_delay(self._attempt, self._settings, self._rng, response)
        self._attempt += 1
        return delay


class Deadline:
    """When `subscribe` gives up on a request (never, without a timeout)."""

    def __init__(self, timeout: float | None, monotonic: Callable[[], float]) -> None:
        self.timeout = timeout
        self._monotonic = monotonic
        self._at = None if timeout is None else monotonic() + timeout

    def passed(self) -> bool:
        """Has the time run out?"""
        return self._at is not None and self._monotonic() >= self._at

    def error(self, handle: QueueHandle) -> FalTimeoutError:
        """What `subscribe` raises once it has cancelled the late request."""
        return FalTimeoutError(
            f"request {handle.request_id} not done within {self.timeout} s; cancelled",
            request_id=handle.request_id,
        )


def transport_error(what: str, exc: Exception) -> FalTransportError:
    """The client's error for a request that failed on the wire (`what`: which one)."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return FalTransportError(f"{what}: {reason}")


def without_query(url: str) -> str:
    """`url` without its query, for error messages (signed URLs carry secrets there)."""
    return url.split("?", 1)[0]


def downloads(result: dict[str, Any], directory: Path) -> list[tuple[str, Path]]:
    """(url, path) of each media file of `result`, under `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    return [
        (url, directory / file_name_for(url, suggested, taken))
        for url, suggested in media_files(result)
    ]


def content_length(response: httpx.Response) -> int | None:
    """The declared size of a download, for progress (None when unknown)."""
    declared = response.headers.get("content-length", "")
    return int(declared) or None if declared.isdigit() else None


def retry_delay(
    attempt: int,
    settings: ClientSettings,
    rng: random.Random,
    response: httpx.Response | None = None,
) -> float:
    """Exponential backoff with full jitter; a 429's Retry-After wins (capped)."""
    if response is not None and response.status_code == 429:
        retry_after = response.headers.get("retry-after", "")
        try:
            return min(max(float(retry_after), 0.0), settings.max_backoff)
        except ValueError:
            pass
    ceiling = min(settings.max_backoff, settings.backoff * 2**attempt)
    return rng.uniform(ceiling / 2, ceiling)


def should_retry_status(response: httpx.Response, idempotent: bool) -> bool:
    """429 always (the request was refused); 502/503/504 only when repeating is safe."""
    if response.status_code == 429:
        return True
    return idempotent and response.status_code in RETRY_STATUSES


def should_retry_transport(exc: httpx.RequestError, idempotent: bool) -> bool:
    """A connection that never reached the server is always safe to retry."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return True
    return idempotent and isinstance(exc, httpx.TransportError)


def media_files(result: Any) -> Iterator[tuple[str, str | None]]:
    """(url, file name) of every media file in a result: any object with a `url`
    and a `content_type` (images, video, audio, files)."""
    for item in media_objects(result):
        name = item.get("file_name")
        yield item["url"], name if isinstance(name, str) else None


def file_name_for(url: str, suggested: str | None, taken: set[str]) -> str:
    """A safe, unique file name for a download (never a path outside the directory)."""
    name = PurePosixPath(suggested or urlsplit(url).path).name or "file"
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).lstrip(".") or "file"
    stem, dot, ext = name.partition(".")
    candidate, n = name, 1
    while candidate in taken:
        candidate = f"{stem}-{n}{dot}{ext}"
        n += 1
    taken.add(candidate)
    return candidate
