"""A webhook receiver for `mockserver check --webhook-listen`: records what arrives."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    import uvicorn

_MAX_BODY = 10 * 2**20
_START_TIMEOUT = 10.0


@dataclass
class Delivery:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes = field(repr=False)


class WebhookReceiver:
    """An HTTP endpoint on `host:port` that accepts every POST and keeps it.

    `public_url` is how the server under check reaches it (a tunnel or a public
    address); each scenario run gets its own path below it, so deliveries are
    matched to requests even when a server drops fal's headers.
    """

    def __init__(self, host: str, port: int, public_url: str) -> None:
        self.host = host
        self.port = port
        self.public_url = public_url.rstrip("/")
        self.deliveries: list[Delivery] = []
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])

    def __repr__(self) -> str:
        return f"WebhookReceiver({self.host}:{self.port} -> {self.public_url})"

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_BODY:
            return JSONResponse({"detail": "too large"}, status_code=413)
        path = "/" + request.path_params["path"]
        self.deliveries.append(Delivery(path, dict(request.headers), body))
        return JSONResponse({"received": True})

    def url_for(self, key: str) -> str:
        """The public URL of one scenario run's hook."""
        return f"{self.public_url}/hooks/{key}"

    def arrived(self, key: str) -> list[Delivery]:
        """Deliveries to `url_for(key)` so far."""
        return [d for d in self.deliveries if d.path == f"/hooks/{key}"]

    async def start(self) -> None:
        """Listen (in this event loop) until `stop`; OSError when the address is taken."""
        import uvicorn

        # Bound here, not by uvicorn: uvicorn exits the process when it cannot bind.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            where = f"{self.host}:{self.port}"
            raise OSError(f"the webhook receiver cannot listen on {where}: {exc}") from None
        self._socket = sock
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _START_TIMEOUT
        while not server.started:
            if self._task.done() or loop.time() > deadline:
                raise OSError(f"the webhook receiver could not listen on {self.host}:{self.port}")
            await asyncio.sleep(0.01)  # a server starting: the one wait there is

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._socket is not None:
            self._socket.close()
