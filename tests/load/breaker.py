"""A deliberately broken intermediary: the instant mock behind a middleware that
misbehaves on a known share of requests and counts exactly what it broke.

Every EVERY-th result is dropped (404), the one after it is another request's
result; every EVERY-th status request (poll or stream) answers 429; every
EVERY-th job's status goes IN_PROGRESS and then back to IN_QUEUE.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

# /{owner}/{alias}/requests/{id}, /status or /status/stream
_ROUTE = re.compile(r"^/(?P<app>[^/]+/[^/]+)/requests/(?P<id>[^/]+)(?P<action>/status(/stream)?)?$")
EVERY = 3


class Breaker:
    """ASGI middleware around the mock; `broken` counts what it did, by fault."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: Counter[str] = Counter()
        self.broken: Counter[str] = Counter()  # dropped, crossed, limited, disordered
        self._disordered: dict[str, int] = {}  # request id -> fake answers given (-1: none)
        self._last_result: tuple[str, str] | None = None  # (app, request id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _ROUTE.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        app_id, request_id, action = match["app"], match["id"], match["action"] or ""
        kind = "status" if action else "result"
        self.seen[kind] += 1
        turn = self.seen[kind] % EVERY
        answer: Response | None = None
        if kind == "result":
            previous, self._last_result = self._last_result, (app_id, request_id)
            if turn == 0:
                self.broken["dropped"] += 1
                answer = JSONResponse({"detail": "Request not found"}, 404)
            elif turn == 1 and previous is not None and previous[1] != request_id:
                self.broken["crossed"] += 1
                scope = {**scope, "path": f"/{previous[0]}/requests/{previous[1]}"}
        elif turn == 0:
            self.broken["limited"] += 1
            answer = JSONResponse({"detail": "Too many requests"}, 429, {"Retry-After": "0"})
        else:
            answer = self._disorder(request_id, stream=action.endswith("/stream"))
        if answer is not None:
            await answer(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _disorder(self, request_id: str, *, stream: bool) -> Response | None:
        """A chosen job's status answers: IN_PROGRESS, then IN_QUEUE, then the real ones."""
        if request_id not in self._disordered:
            chosen = (len(self._disordered) + 1) % EVERY == 0
            self._disordered[request_id] = 0 if chosen else -1
            self.broken["disordered"] += chosen
        faked = self._disordered[request_id]
        if faked < 0:
            return None
        steps: list[dict[str, Any]] = [
            {"status": "IN_PROGRESS", "request_id": request_id, "logs": []},
            {"status": "IN_QUEUE", "request_id": request_id, "queue_position": 0, "logs": []},
        ]
        if stream:  # the whole sequence in one stream, ending truthfully (jobs are instant)
            self._disordered[request_id] = -1
            events = [*steps, {"status": "COMPLETED", "request_id": request_id, "logs": []}]
            body = "".join(f"data: {json.dumps(event)}\n\n" for event in events)
            return Response(body, 200, media_type="text/event-stream")
        if faked >= len(steps):
            return None
        self._disordered[request_id] = faked + 1
        return JSONResponse(steps[faked], 202)
