"""pytest plugin: `fal_mock` (in process) and `fal_server`/`fal_https_server` (on a port).

Registered through the ``pytest11`` entry point, so it is imported by every
pytest run in an environment where the package is installed: this module
imports only pytest and the standard library, and the mock itself
(`mockserver.testing`, Starlette, jsonschema...) is imported by the first
fixture that needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mockserver.testing import FalMockFixture, FalServer, MockOptions

_MARKER_HELP = (
    "fal_mock(profile=, contracts=, queue_seconds=, run_seconds=, outcomes=,"
    " intermediary_urls=, key=, unknown_endpoints=): configure the fal mock for this test"
)


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
        default=None,
        type=str.lower,
        choices=["key", "bearer"],
        help="Authorization scheme of the live service: key (fal) or bearer"
        " (default: the one of fal_mock_profile: key for official, bearer for intermediary)",
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
    parser.addini(
        "fal_mock_unknown_endpoints",
        "404 (like fal) or generic (any endpoint answers; assert_nothing_unexpected reports it)",
        default="404",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)


def _options(request: pytest.FixtureRequest) -> MockOptions:
    """The test's mock options: defaults, then the ini file, then the marker."""
    from mockserver.testing import MockOptions

    config = request.config
    values: dict[str, Any] = {"profile": config.getini("fal_mock_profile")}
    values["contracts"] = tuple(Path(p) for p in config.getini("fal_mock_contracts"))
    values["intermediary_urls"] = tuple(config.getini("fal_mock_intermediary_urls"))
    values["unknown_endpoints"] = config.getini("fal_mock_unknown_endpoints")
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


def _live_scheme(config: pytest.Config) -> str:
    chosen = config.getoption("--fal-live-auth-scheme")
    if chosen is None:
        chosen = "bearer" if config.getini("fal_mock_profile") == "intermediary" else "key"
    return "Bearer" if chosen == "bearer" else "Key"


@pytest.fixture
def fal_mock(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FalMockFixture]:
    """fal's hosts (and configured intermediary URLs) answered in process by the mock."""
    from mockserver.testing import InProcessFal, LiveTarget

    live_url = request.config.getoption("--fal-live-url")
    if live_url:
        key_env = request.config.getoption("--fal-live-key-env")
        key = os.environ.get(key_env)
        if not key:
            pytest.skip(f"--fal-live-url is set but ${key_env} holds no key")
        yield LiveTarget(live_url, key, _live_scheme(request.config))
        return
    options = _options(request)
    monkeypatch.setenv("FAL_KEY", options.key)
    fal = InProcessFal(options).start()
    try:
        yield fal
    finally:
        fal.stop()
    if fal.unmocked:
        # The request already raised, but code under test may have swallowed it.
        pytest.fail(
            "requests to fal hosts the mock does not answer were stopped:\n  "
            + "\n  ".join(fal.unmocked),
            pytrace=False,
        )


class _Servers:
    """The session's servers: one per distinct set of options (and TLS or not)."""

    def __init__(self) -> None:
        self._running: dict[tuple[Any, ...], FalServer] = {}

    def for_test(self, request: pytest.FixtureRequest, *, tls: bool) -> FalServer:
        from mockserver.testing import FalServer

        # A server has no hostnames to intercept: intermediary URLs are fal_mock's.
        options = _options(request).without_intermediaries()
        key = (tls, *options.server_key())
        server = self._running.get(key)
        if server is None:
            server = self._running[key] = FalServer(options, tls=tls).start()
        server.reset()
        server.apply_outcomes(options.outcomes)
        return server

    def stop(self) -> None:
        for server in self._running.values():
            server.stop()
        self._running.clear()


@pytest.fixture(scope="session")
def _fal_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.stop()


@pytest.fixture
def fal_server(request: pytest.FixtureRequest, _fal_servers: _Servers) -> FalServer:
    """A real server on 127.0.0.1, configured by the ini options and the marker (one
    per session and configuration, reset for each test)."""
    return _fal_servers.for_test(request, tls=False)


@pytest.fixture
def fal_https_server(request: pytest.FixtureRequest, _fal_servers: _Servers) -> FalServer:
    """The same over TLS; `.env` has SSL_CERT_FILE and fal-client's host variables."""
    return _fal_servers.for_test(request, tls=True)
