"""Run `mockserver serve` as a real process on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    """A port nothing listens on right now (loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_server(
    *args: str, env: dict[str, str] | None = None, scheme: str = "http", ca_file: str | None = None
) -> Iterator[str]:
    """Start the server with `args`, yield its base URL, stop it afterwards.

    For a TLS server pass `scheme="https"` and the CA that signed its certificate.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mockserver",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        [*command, "--log-level", "warning", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        _wait_until_up(process, base, ca_file)
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


def _wait_until_up(process: subprocess.Popen[bytes], base: str, ca_file: str | None) -> None:
    # Polling a starting process is the one wait here: the mock's own state is
    # never waited for, tests move its clock through the control API.
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"mockserver exited with {process.returncode}:\n{output}")
        try:
            verify: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=ca_file) if ca_file else True
            )
            if httpx.get(f"{base}/_mock/health", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"mockserver did not answer on {base} within {STARTUP_TIMEOUT} s")


@contextlib.contextmanager
def serving_app(app: Any) -> Iterator[str]:
    """Any ASGI `app` under uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(1000):
        if server.started:
            break
        started.wait(0.01)  # starting a server: the one wait we cannot avoid
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
