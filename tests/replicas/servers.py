"""Processes the replica tests start and stop: redis-server and `mockserver serve`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

_START_SECONDS = 20.0


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """redis-server on 127.0.0.1 with its files in `directory`; AOF on, so a
    restart of the mock replicas (or of Redis) keeps the log."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until it answers PING."""
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--save", "",
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + _START_SECONDS
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self._process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.02)  # a process starting, not mock state
        finally:
            client.close()

    def stop(self) -> None:
        """Stop it (SIGTERM: it flushes its append-only file first)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None


class Replica:
    """`mockserver serve --store URL` on a free port, in a subprocess."""

    def __init__(self, store_url: str, *args: str) -> None:
        self.store_url = store_url
        self.args = args
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Replica:
        """Start it and wait for the banner naming its port."""
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
        # Chosen here: with --public-url the banner names that URL, not the port.
        port = free_port()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "mockserver", "serve", "--port", str(port),
             "--store", self.store_url, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )  # fmt: skip
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("fal mock on "):  # bound and listening
                self.base_url = f"http://127.0.0.1:{port}"
                # Keep reading, so that a full pipe never blocks the server.
                threading.Thread(target=self._process.stdout.read, daemon=True).start()
                return self
        self.kill()
        raise RuntimeError("the replica did not start (no banner)")

    def kill(self) -> None:
        """SIGKILL: no goodbye, as when a host dies."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> Replica:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.kill()
