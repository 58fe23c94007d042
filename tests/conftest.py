"""Shared fixtures: a manual clock, a mock built on it, an HTTP client, served mocks."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Final

import httpx
import pytest
from starlette.testclient import TestClient

from mockserver import Catalog, FalMock, ManualClock, MockConfig, create_app
from tests.e2e.server import ServerPool

#: The longest modules, started first: pytest-xdist hands work out in collection
#: order (`make test` passes --no-loadscope-reorder), and a long test started last
#: leaves the other worker idle while it runs.
RUN_FIRST: Final = (
    "tests/e2e/test_wheel.py",
    "tests/property/test_mutations.py",
    "tests/load/test_load_runs.py",
    "tests/plugin/test_plugin_fixes.py",
    "tests/e2e/test_check_command.py",
)
#: Session fixtures too costly to start on both workers: tests using them stay on
#: one worker with the rest of their module.
SHARED_SESSION_FIXTURES: Final = frozenset({"mock_servers"})
# Imported before any pytester run: an in-process `runpytest` drops the modules it
# imported when it ends, and a re-imported httptools no longer recognises the
# upgrade error its C parser raises, so a later uvicorn (AppServer, fal_server)
# would drop every WebSocket handshake ("Fatal error on transport").
for _module in (
    "httptools",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.websockets_sansio_impl",
):
    importlib.import_module(_module)

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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """How `make test` shares the tests between its workers (`--dist loadgroup`).

    A test that shares setup with its module (a module-scoped fixture, or the
    session's `serve` processes) goes to the worker running the rest of its
    module, so that setup happens once; any other test goes to whichever worker
    is free, so the two finish together. Modules that start processes (e2e) come
    first, the longest of them (`RUN_FIRST`) before the rest.
    """
    e2e_modules = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("e2e")}

    def start_order(item: pytest.Item) -> tuple[int, int]:
        module = item.nodeid.split("::")[0]
        if module in RUN_FIRST:
            return (0, RUN_FIRST.index(module))
        return (1, 0) if module in e2e_modules else (2, 0)

    for item in items:
        if _shares_setup(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    items.sort(key=start_order)  # stable: each module's tests keep their order


def _shares_setup(item: pytest.Item) -> bool:
    if not isinstance(item, pytest.Function):
        return False
    for name, definitions in item._fixtureinfo.name2fixturedefs.items():
        # the last definition is the one the test gets (the others are overridden)
        if name in SHARED_SESSION_FIXTURES or definitions[-1].scope in ("module", "package"):
            return True
    return False
