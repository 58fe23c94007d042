"""A real `redis-server` for the replica tests: one per test session, on a free
port of 127.0.0.1, in a temporary directory, stopped at the end.

`make test` installs the Debian package when `redis-server` is missing (see
the Makefile); run by hand, install it first (``apt-get install redis-server``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.replicas.servers import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A running redis-server with append-only persistence (restarts keep data)."""
    if shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server is not installed: `make test` installs it (apt-get install redis-server)"
        )
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server's URL, its database emptied for this test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url
