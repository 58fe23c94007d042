"""A deliberately broken intermediary: the instant mock behind a middleware that
misbehaves on a known share of requests and counts exactly what it broke.

Of the results asked for, every EVERY-th is dropped (404) and the one after it
is another request's; every EVERY-th media download fails; every EVERY-th
status request (poll or stream) answers 429. Of the jobs, every EVERY-th has
its status go IN_PROGRESS and then back to IN_QUEUE, and every STUCK-th other
one never leaves IN_PROGRESS.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# /{owner}/{alias}/requests/{id}, /status or /status/stream
_ROUTE = re.compile(r"^/(?P<app>[^/]+/[^/]+)/requests/(?P<id>[^/]+)(?P<action>/status(/stream)?)?$")
EVERY = 3
STUCK = 5
# A stuck stream stays open at most this long (the load run gives up well before).
STUCK_STREAM_SECONDS = 30.0


class Breaker:
    """ASGI middleware around the mock; `broken` counts what it did, by fault:
    dropped, crossed, media, limited, disordered, stuck, stuck-streams."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: Counter[str] = Counter()
        self.broken: Counter[str] = Counter()
        self._jobs: dict[str, str] = {}  # request id -> "disorder", "stuck" or "fine"
        self._faked: Counter[str] = Counter()  # request id -> disordered answers given
        self._last_result: tuple[str, str] | None = None  # (app, request id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self._misbehave(scope) if scope["type"] == "http" else None
        if isinstance(answer, Response):
            await answer(scope, receive, send)
        else:
            await self.app(answer or scope, receive, send)

    def _misbehave(self, scope: Scope) -> Response | Scope | None:
        """A made-up answer, a rewritten request, or None (the mock answers)."""
        path = scope.get("path", "")
        if scope["method"] != "GET":
            return None
        if path.startswith("/files/"):
            self.seen["media"] += 1
            if self.seen["media"] % EVERY == 0:
                self.broken["media"] += 1
                return JSONResponse({"detail": "Not found"}, 404)
            return None
        match = _ROUTE.match(path)
        if match is None:
            return None
        app_id, request_id, action = match["app"], match["id"], match["action"] or ""
        if not action:
            return self._result(scope, app_id, request_id)
        self.seen["status"] += 1
        if self.seen["status"] % EVERY == 0:
            self.broken["limited"] += 1
            return JSONResponse({"detail": "Too many requests"}, 429, {"Retry-After": "0"})
        return self._status(request_id, stream=action.endswith("/stream"))

    def _result(self, scope: Scope, app_id: str, request_id: str) -> Response | Scope | None:
        self.seen["result"] += 1
        turn = self.seen["result"] % EVERY
        previous, self._last_result = self._last_result, (app_id, request_id)
        if turn == 0:
            self.broken["dropped"] += 1
            return JSONResponse({"detail": "Request not found"}, 404)
        if turn == 1 and previous is not None and previous[1] != request_id:
            self.broken["crossed"] += 1
            return {**scope, "path": f"/{previous[0]}/requests/{previous[1]}"}
        return None

    def _status(self, request_id: str, *, stream: bool) -> Response | None:
        if request_id not in self._jobs:
            index = len(self._jobs) + 1
            fault = "disorder" if index % EVERY == 0 else "stuck" if index % STUCK == 2 else "fine"
            self._jobs[request_id] = fault
            if fault != "fine":
                self.broken["disordered" if fault == "disorder" else "stuck"] += 1
        fault = self._jobs[request_id]
        running = {"status": "IN_PROGRESS", "request_id": request_id, "logs": []}
        if fault == "stuck":
            if stream:
                self.broken["stuck-streams"] += 1
                return StreamingResponse(_never_done(running), media_type="text/event-stream")
            return JSONResponse(running, 202)
        if fault != "disorder" or self._faked[request_id] < 0:
            return None
        back = {"status": "IN_QUEUE", "request_id": request_id, "queue_position": 0, "logs": []}
        if stream:  # the whole sequence in one stream, ending truthfully (jobs are instant)
            self._faked[request_id] = -1
            done = {"status": "COMPLETED", "request_id": request_id, "logs": []}
            body = "".join(f"data: {json.dumps(event)}\n\n" for event in (running, back, done))
            return Response(body, 200, media_type="text/event-stream")
        answers: list[dict[str, Any]] = [running, back]
        if self._faked[request_id] >= len(answers):
            return None
        self._faked[request_id] += 1
        return JSONResponse(answers[self._faked[request_id] - 1], 202)


async def _never_done(event: dict[str, Any]) -> AsyncIterator[str]:
    yield f"data: {json.dumps(event)}\n\n"
    for _ in range(int(STUCK_STREAM_SECONDS / 0.5)):
        await asyncio.sleep(0.5)
        yield ": still running\n\n"
