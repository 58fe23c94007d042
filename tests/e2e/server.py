"""Real servers on 127.0.0.1 for end-to-end tests.

`running_server` starts a `mockserver serve` process on a port the kernel picks
(``--port 0``) and reads the port back from the first line the server prints.
Starting one costs about a second of imports, so tests share them: a
`ServerPool` keeps one process per configuration for the whole session and
resets it (``POST /_mock/reset``) before handing it to the next test.
`serving_app` runs any ASGI app in a thread (the same server as `FalServer`).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from mockserver.testing import AppServer

STARTUP_TIMEOUT = 30.0
_BANNER = re.compile(r" on (https?://\S+)")


@contextlib.contextmanager
def running_server(
    *args: str,
    env: Mapping[str, str] | None = None,
    scheme: str = "http",
    ca_file: str | None = None,
) -> Iterator[str]:
    """Start `mockserver serve` with `args`, yield its base URL, stop it afterwards.

    For a TLS server pass `scheme="https"` and the CA that signed its certificate.
    """
    command = [sys.executable, "-m", "mockserver", "serve", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--log-level", "warning", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    try:
        base = _base_url(process)
        if not base.startswith(f"{scheme}://"):
            raise RuntimeError(f"expected a {scheme} server, it serves {base}")
        _wait_until_up(base, ca_file)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def _base_url(process: subprocess.Popen[bytes]) -> str:
    """The URL in the server's banner; the rest of its output is drained in a
    thread, so a chatty server never blocks on a full pipe."""
    assert process.stdout is not None
    found: list[str] = []
    seen: list[bytes] = []
    banner = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            match = _BANNER.search(line.decode(errors="replace"))
            if match and not found:
                found.append(match.group(1))
                banner.set()
        banner.set()  # the process ended (or closed its output) without one

    threading.Thread(target=read, daemon=True).start()
    if not banner.wait(STARTUP_TIMEOUT) or not found:
        output = b"".join(seen).decode(errors="replace")
        raise RuntimeError(f"mockserver did not start (exit {process.poll()}):\n{output}")
    return found[0]


def _wait_until_up(base: str, ca_file: str | None) -> None:
    # The banner is printed once the port is bound; the first request also waits
    # for the application to finish starting (the kernel queues the connection).
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    response = httpx.get(f"{base}/_mock/health", timeout=STARTUP_TIMEOUT, verify=verify)
    if response.status_code != 200:
        raise RuntimeError(f"mockserver on {base} answered health with {response.status_code}")


class ServerPool:
    """One `mockserver serve` process per configuration, shared by the tests of a
    session and reset before each use (jobs, requests, outcomes, faults, webhooks)."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._servers: dict[tuple[Any, ...], tuple[str, str | None]] = {}

    def get(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        scheme: str = "http",
        ca_file: str | None = None,
    ) -> str:
        """The base URL of a clean server started with `args` (started on first use)."""
        key = (args, tuple(sorted((env or {}).items())), scheme, ca_file)
        if key not in self._servers:
            base = self._stack.enter_context(
                running_server(*args, env=env, scheme=scheme, ca_file=ca_file)
            )
            self._servers[key] = (base, ca_file)
        base, ca = self._servers[key]
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
        reset = httpx.post(f"{base}/_mock/reset", timeout=10, verify=verify)
        assert reset.status_code == 200, reset.text
        return base

    def close(self) -> None:
        """Stop every server."""
        self._stack.close()
        self._servers.clear()


@contextlib.contextmanager
def serving_app(app: Any) -> Iterator[str]:
    """Any ASGI `app` under uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    with AppServer(app) as server:
        yield server.base_url


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections while the block runs: it is bound
    (so nobody else takes it) but never listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def free_port() -> int:
    """A port free right now, for commands that must be told their port before they
    start (`mockserver record --port`, `check --webhook-listen`). Racy by nature:
    servers we start ourselves bind port 0 instead (`running_server`, `AppServer`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
