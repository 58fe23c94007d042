"""Shared fixtures: a manual clock, a mock built on it, an HTTP client, served mocks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from mockserver import Catalog, FalMock, ManualClock, MockConfig, create_app
from tests.e2e.server import ServerPool

KEY = "test-key"
AUTH = {"Authorization": f"Key {KEY}"}
DEV = "fal-ai/flux-1/dev"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The shipped contracts, loaded once."""
    return Catalog.load()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


MockFactory = Callable[..., FalMock]


@pytest.fixture
def make_mock(clock: ManualClock, catalog: Catalog) -> MockFactory:
    def make(**config: Any) -> FalMock:
        return FalMock(MockConfig(**config), clock=clock, catalog=catalog)

    return make


@pytest.fixture
def mock(make_mock: MockFactory) -> FalMock:
    """Contract timings: dev queues 1 s and runs 1 s."""
    return make_mock()


@pytest.fixture
def client(mock: FalMock) -> Iterator[TestClient]:
    with TestClient(create_app(mock), headers=AUTH) as test_client:
        yield test_client


def submit(client: TestClient, endpoint: str = DEV, **payload: Any) -> dict[str, Any]:
    """Submit and return the (checked) queue answer."""
    payload.setdefault("prompt", "a cat")
    response = client.post(f"/{endpoint}", json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def path_of(url: str) -> str:
    """The path (and query) of an absolute URL, for the in-process client."""
    parsed = httpx.URL(url)
    return parsed.raw_path.decode()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def mock_servers() -> Iterator[ServerPool]:
    """`mockserver serve` processes shared by the session: `mock_servers.get(*args)`
    is a clean server started with those arguments (one process per configuration)."""
    pool = ServerPool()
    yield pool
    pool.close()
