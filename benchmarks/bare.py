"""The baseline: a bare Starlette app answering a status-shaped JSON body."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def status(request: Request) -> Response:
    """A fixed body of the same shape and size as the mock's status answer."""
    request_id = request.path_params["request_id"]
    base = f"http://127.0.0.1/fal-ai/flux-1/requests/{request_id}"
    return JSONResponse(
        {
            "status": "COMPLETED",
            "request_id": request_id,
            "response_url": base,
            "status_url": base + "/status",
            "cancel_url": base + "/cancel",
            "logs": None,
            "metrics": {"inference_time": 0.0},
        }
    )


async def submit(request: Request) -> Response:
    """Reads and parses the JSON body, as a submit must."""
    payload = await request.json()
    return JSONResponse({"status": "IN_QUEUE", "request_id": "x", "prompt": payload.get("prompt")})


def _fixed(variable: str) -> bytes:
    """Bytes the bench copied from the mock (its result, its media), so both
    apps serve the same bytes; empty when run without them."""
    path = os.environ.get(variable)
    return Path(path).read_bytes() if path else b""


_RESULT = _fixed("BENCH_RESULT_FILE")
_MEDIA = _fixed("BENCH_MEDIA_FILE")


async def result(request: Request) -> Response:
    """The mock's result body, as fixed bytes."""
    return Response(_RESULT, media_type="application/json")


async def media(request: Request) -> Response:
    """The mock's media file, as fixed bytes."""
    return Response(_MEDIA, media_type="image/jpeg")


app = Starlette(
    routes=[
        Route("/fal-ai/flux-1/requests/{request_id}/status", status, methods=["GET"]),
        Route("/fal-ai/flux-1/requests/{request_id}", result, methods=["GET"]),
        Route("/fal-ai/flux-1/dev", submit, methods=["POST"]),
        Route("/files/{bucket}/{name}", media, methods=["GET"]),
    ]
)
