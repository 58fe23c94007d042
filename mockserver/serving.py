"""Run an ASGI app under uvicorn for the `serve` and `record` commands.

The socket is bound here, before anything is announced: a busy port is one
clear error (no banner first, no traceback), and the banner is printed only
once the address is really ours. SIGTERM (what `kill` sends) stops the server
as gracefully as Ctrl-C does, so the command still prints its summary.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any, NoReturn


class CannotListen(OSError):
    """The address cannot be bound; the message says why and what to try."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or `CannotListen` with a one-line hint."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise CannotListen(
                f"cannot listen on {where}: the address is already in use (another server"
                f" running?); pick another port: --port {port + 1}, or make serve PORT={port + 1}"
            ) from None
        raise CannotListen(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return sock


_WORKER_START_SECONDS = 60


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within: SIGTERM ends the process the way Ctrl-C does (uvicorn re-raises the
    signal it stopped on once it has shut down; this makes that an interrupt)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(
    app: Any,
    sock: socket.socket,
    *,
    announce: Callable[[], None],
    workers: int = 1,
    **config: Any,
) -> None:
    """Serve `app` on the bound `sock` until Ctrl-C or SIGTERM; `announce` runs once
    the server is about to accept (the socket is already bound).

    With `workers` > 1, `app` is the import string of a factory ("module:function")
    each worker process calls to build its own app; they share `sock`."""
    import uvicorn

    from mockserver.redact import uvicorn_log_config

    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        settings = uvicorn.Config(
            app,
            factory=True,
            workers=workers,
            log_config=uvicorn_log_config(),
            # A worker loads the catalog before it answers health checks: on a
            # busy machine that takes longer than uvicorn's 5 s default.
            timeout_worker_healthcheck=_WORKER_START_SECONDS,
            **config,
        )
        announce()
        # The supervisor handles SIGINT/SIGTERM itself: it stops every worker.
        Multiprocess(settings, sockets=[sock]).run()
        sock.close()
        return
    # Access-log lines go through the redaction policy (`?fal_webhook=...token=`).
    server = uvicorn.Server(uvicorn.Config(app, log_config=uvicorn_log_config(), **config))
    announce()
    with sigterm_as_interrupt(), contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    sock.close()
