"""A small queue server written from fal's documentation, independent of the mock.

It follows docs.fal.ai (queue, status, stream, cancel, errors) and nothing of
`mockserver`: its IN_QUEUE status carries no `logs` (as fal's own example),
its answers are shaped by hand. Live mode run against it must report no
failure; if it does, the checker judges something fal does not promise.
Two models, fal-ai/flux-1/dev and fal-ai/flux-1/schnell, text to image.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

QUEUE_SECONDS = 1.0
RUN_SECONDS = 2.0
MODELS = ("fal-ai/flux-1/dev", "fal-ai/flux-1/schnell")
PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


@dataclass
class _Request:
    id: str
    key: str
    app: str  # owner/alias
    input: dict[str, Any]
    submitted: float
    seed: int
    cancelled: bool = False
    logs: list[dict[str, Any]] = field(default_factory=list)


def documented_server(
    keys: frozenset[str],
    now: Callable[[], float],
    pause: Callable[[], Awaitable[None]] = lambda: asyncio.sleep(0.05),
) -> Starlette:
    """The server; `now` is its clock, `pause` how a stream waits between looks."""
    requests: dict[str, _Request] = {}

    def state(item: _Request) -> str:
        age = now() - item.submitted
        if item.cancelled or age >= QUEUE_SECONDS + RUN_SECONDS:
            return "COMPLETED"
        return "IN_PROGRESS" if age >= QUEUE_SECONDS else "IN_QUEUE"

    def caller(request: Request) -> str | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return key if scheme == "Key" and key in keys else None

    def urls(request: Request, item: _Request) -> dict[str, str]:
        base = f"{str(request.base_url).rstrip('/')}/{item.app}/requests/{item.id}"
        return {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def status_body(request: Request, item: _Request, logs: bool) -> dict[str, Any]:
        current = state(item)
        body: dict[str, Any] = {"status": current, "request_id": item.id, **urls(request, item)}
        if current == "IN_QUEUE":
            ahead = [
                other
                for other in requests.values()
                if state(other) == "IN_QUEUE" and other.submitted < item.submitted
            ]
            body["queue_position"] = len(ahead)
            return body  # fal's documented IN_QUEUE: no logs
        body["logs"] = (
            [{"message": "running", "level": "INFO", "source": "USER", "timestamp": "2025"}]
            if logs
            else None
        )
        if current == "COMPLETED":
            body["metrics"] = {"inference_time": RUN_SECONDS}
        return body

    def find(request: Request) -> _Request | None:
        key = caller(request)
        item = requests.get(request.path_params["request_id"])
        app = f"{request.path_params['owner']}/{request.path_params['alias']}"
        return item if item is not None and item.key == key and item.app == app else None

    def refused() -> JSONResponse:
        return JSONResponse({"detail": "No valid key given"}, 401)

    def not_found() -> JSONResponse:
        return JSONResponse({"detail": "Request not found"}, 404)

    async def submit(request: Request) -> Response:
        key = caller(request)
        if key is None:
            return refused()
        endpoint = request.path_params["endpoint"]
        if endpoint not in MODELS:
            return JSONResponse({"detail": "Application not found"}, 404)
        data = json.loads(await request.body() or b"{}")
        problems = []
        if not isinstance(data.get("prompt"), str):
            problems.append({"loc": ["body", "prompt"], "msg": "field required", "type": "missing"})
        count = data.get("num_images", 1)
        if not isinstance(count, int) or not 1 <= count <= 4:
            problems.append({"loc": ["body", "num_images"], "msg": "1 to 4", "type": "int_parsing"})
        if problems:
            return JSONResponse({"detail": problems}, 422)
        owner, alias = endpoint.split("/")[:2]
        seed = data.get("seed") if isinstance(data.get("seed"), int) else random.randrange(2**31)
        item = _Request(str(uuid.uuid4()), key, f"{owner}/{alias}", data, now(), seed)
        requests[item.id] = item
        body = {"status": "IN_QUEUE", "request_id": item.id, **urls(request, item)}
        body["queue_position"] = status_body(request, item, False).get("queue_position", 0)
        return JSONResponse(body)

    async def status(request: Request) -> Response:
        if caller(request) is None:
            return refused()
        item = find(request)
        if item is None:
            return not_found()
        logs = request.query_params.get("logs", "0") in ("1", "true")
        body = status_body(request, item, logs)
        return JSONResponse(body, 200 if body["status"] == "COMPLETED" else 202)

    async def stream(request: Request) -> Response:
        if caller(request) is None:
            return refused()
        item = find(request)
        if item is None:
            return not_found()
        logs = request.query_params.get("logs", "0") in ("1", "true")

        async def events() -> AsyncIterator[bytes]:
            last = None
            while True:
                body = status_body(request, item, logs)
                if body["status"] != last:
                    last = body["status"]
                    yield f"data: {json.dumps(body)}\n\n".encode()
                if last == "COMPLETED":
                    return  # fal closes the stream after COMPLETED
                await pause()

        return StreamingResponse(events(), media_type="text/event-stream")

    async def result(request: Request) -> Response:
        if caller(request) is None:
            return refused()
        item = find(request)
        if item is None:
            return not_found()
        if state(item) != "COMPLETED":
            return JSONResponse({"detail": "Request is still in progress"}, 400)
        if item.cancelled:
            return JSONResponse({"detail": "Request was cancelled"}, 499)
        width, height = _size(item.input.get("image_size", "landscape_4_3"))
        kind = item.input.get("output_format", "jpeg")
        base = str(request.base_url).rstrip("/")
        count = item.input.get("num_images", 1)
        images = [
            {
                "url": f"{base}/media/{width}x{height}/{item.id}-{n}.{kind}",
                "width": width,
                "height": height,
                "content_type": f"image/{kind}",
            }
            for n in range(count)
        ]
        output = {
            "images": images,
            "timings": {"inference": RUN_SECONDS},
            "seed": item.seed,
            "has_nsfw_concepts": [False] * count,
            "prompt": item.input["prompt"],
        }
        return JSONResponse(output, headers={"X-Fal-Request-Id": item.id})

    async def cancel(request: Request) -> Response:
        if caller(request) is None:
            return refused()
        item = find(request)
        if item is None:
            return JSONResponse({"status": "NOT_FOUND"}, 404)
        if state(item) == "COMPLETED":
            return JSONResponse({"status": "ALREADY_COMPLETED"}, 400)
        item.cancelled = True
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, 202)

    async def media(request: Request) -> Response:
        width, height = (int(x) for x in request.path_params["size"].split("x"))
        kind = request.path_params["name"].rsplit(".", 1)[-1]
        out = io.BytesIO()
        Image.new("RGB", (width, height), "teal").save(out, format=kind.upper())
        return Response(out.getvalue(), media_type=f"image/{kind}")

    request_route = "/{owner}/{alias}/requests/{request_id}"
    return Starlette(
        routes=[
            Route("/media/{size}/{name}", media, methods=["GET"]),
            Route(f"{request_route}/status/stream", stream, methods=["GET"]),
            Route(f"{request_route}/status", status, methods=["GET"]),
            Route(f"{request_route}/cancel", cancel, methods=["PUT"]),
            Route(request_route, result, methods=["GET"]),
            Route("/{endpoint:path}", submit, methods=["POST"]),
        ]
    )


def _size(value: Any) -> tuple[int, int]:
    if isinstance(value, dict):
        return int(value["width"]), int(value["height"])
    return PRESETS[str(value)]
