"""pytest plugin: `fal_mock` (in process) and `fal_server`/`fal_https_server` (on a port).

Registered through the ``pytest11`` entry point; the work is in `mockserver.testing`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mockserver.testing import FalServer, InProcessFal, LiveTarget, MockOptions


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fal-mock", "fal queue mock (fal-queue-harness)")
    group.addoption(
        "--fal-live-url", metavar="URL", help="run fal_mock tests against this live service"
    )
    group.addoption(
        "--fal-live-key-env", default="FAL_KEY", metavar="NAME", help="variable with the live key"
    )
    group.addoption(
        "--fal-live-auth-scheme",
        default="Bearer",
        choices=["Key", "Bearer"],
        help="live auth scheme",
    )
    parser.addini("fal_mock_profile", "official or intermediary", default="official")
    parser.addini("fal_mock_contracts", "extra contracts directories", type="paths", default=[])
    parser.addini(
        "fal_mock_intermediary_urls",
        "intermediary base URLs to intercept",
        type="linelist",
        default=[],
    )
    parser.addini("fal_mock_queue_seconds", "time each job queues (default: instant)", default="")
    parser.addini("fal_mock_run_seconds", "time each job runs (default: instant)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fal_mock(profile=, contracts=, queue_seconds=, run_seconds=, outcomes=,"
        " intermediary_urls=, key=): configure the fal mock for this test",
    )


def _options(request: pytest.FixtureRequest) -> MockOptions:
    config = request.config
    values: dict[str, Any] = {"profile": config.getini("fal_mock_profile")}
    values["contracts"] = tuple(Path(p) for p in config.getini("fal_mock_contracts"))
    values["intermediary_urls"] = tuple(config.getini("fal_mock_intermediary_urls"))
    for name in ("queue_seconds", "run_seconds"):
        if config.getini(f"fal_mock_{name}"):
            values[name] = float(config.getini(f"fal_mock_{name}"))
    marker = request.node.get_closest_marker("fal_mock")
    if marker is not None:
        values.update(marker.kwargs)
    for name in ("contracts", "intermediary_urls"):
        if isinstance(values.get(name), str | Path):
            values[name] = (values[name],)
    values["contracts"] = tuple(Path(p) for p in values.get("contracts", ()))
    values["intermediary_urls"] = tuple(values.get("intermediary_urls", ()))
    return MockOptions(**values)


@pytest.fixture
def fal_mock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """fal's hosts (and configured intermediary URLs) answered in process by the mock."""
    live_url = request.config.getoption("--fal-live-url")
    if live_url:
        key_env = request.config.getoption("--fal-live-key-env")
        key = os.environ.get(key_env)
        if not key:
            pytest.skip(f"--fal-live-url is set but ${key_env} holds no key")
        yield LiveTarget(live_url, key, request.config.getoption("--fal-live-auth-scheme"))
        return
    options = _options(request)
    monkeypatch.setenv("FAL_KEY", options.key)
    fal = InProcessFal(options).start()
    try:
        yield fal
    finally:
        fal.stop()


@pytest.fixture(scope="session")
def _fal_server_session() -> Iterator[FalServer]:
    server = FalServer(MockOptions()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _fal_https_server_session() -> Iterator[FalServer]:
    server = FalServer(MockOptions(), tls=True).start()
    yield server
    server.stop()


@pytest.fixture
def fal_server(_fal_server_session: FalServer) -> FalServer:
    """A real server on 127.0.0.1 (one per session, reset for each test)."""
    _fal_server_session.reset()
    return _fal_server_session


@pytest.fixture
def fal_https_server(_fal_https_server_session: FalServer) -> FalServer:
    """The same over TLS; `.env` has SSL_CERT_FILE and fal-client's host variables."""
    _fal_https_server_session.reset()
    return _fal_https_server_session
