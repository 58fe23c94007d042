"""Live mode on realtime (token + msgpack WebSocket) and on `gateway_request_id`.

Realtime needs a real WebSocket: the mock (and deviants of it) are served on
127.0.0.1, one server per kind for the whole module, and the checker opens the
socket the way `mockserver check` does. `gateway_request_id` is judged in
process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import msgpack  # type: ignore[import-untyped]
import pytest

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.catalog import Catalog
from mockserver.check import Checker, RealPacer, Report, Settings, Target, load_scenarios, plan
from mockserver.check.realtime import open_websocket
from mockserver.profiles import get_profile
from mockserver.testing import AppServer
from tests.check.deviants import _buffered, _is_submit, _json_edit
from tests.check.helpers import KEYS, make_mock, run_check

SCHNELL = "fal-ai/flux-1/schnell"
# What the deviant server does wrong; a test sets it before its run.
_DEVIANCE: dict[str, str] = {"mode": ""}
_SOCKET_MODES = frozenset(
    {"no-socket", "error-frame", "text-frame", "closes", "other-output", "silent"}
)


def _verdicts(report: Report) -> dict[str, str]:
    return {r.check: r.verdict.value for r in report.results}


def _deviant(app: Any) -> Any:
    """The mock with one realtime behaviour broken, chosen by `_DEVIANCE["mode"]`."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        mode = _DEVIANCE["mode"]
        if scope["type"] == "http" and scope["path"].startswith("/tokens"):
            if mode == "no-tokens":
                await _answer(send, 404, {"detail": "Not Found"})
                return
            if mode == "token-object":
                await _answer(send, 201, {"token": "a-token-only-fal-client-unwraps"})
                return
        if scope["type"] == "websocket" and mode in _SOCKET_MODES:
            await _websocket(mode, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


async def _answer(send: Any, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _websocket(mode: str, receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    if mode == "no-socket":  # the handshake answered with a plain 404
        await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b""})
        return
    await send({"type": "websocket.accept"})
    await receive()  # the input
    if mode == "error-frame":
        error = {"type": "x-fal-error", "error": "APP_ERROR", "reason": "boom"}
        await send({"type": "websocket.send", "text": json.dumps(error)})
    elif mode == "text-frame":
        await send({"type": "websocket.send", "text": "not json"})
    elif mode == "closes":
        await send({"type": "websocket.close", "code": 1011})
        return
    elif mode == "other-output":
        meta = {"type": "x-fal-message", "message": "warming up"}
        await send({"type": "websocket.send", "text": json.dumps(meta)})  # skipped, as clients do
        await send({"type": "websocket.send", "bytes": msgpack.packb({"frame": 1})})
    elif mode == "silent":
        await asyncio.sleep(5)  # past the checker's request timeout
    await receive()  # the checker's close


@pytest.fixture(scope="module")
def mock_server(catalog: Catalog) -> Iterator[AppServer]:
    mock = FalMock(
        MockConfig(profile=get_profile("official"), keys=frozenset(KEYS), instant=True),
        clock=ManualClock(),
        catalog=catalog,
    )
    with AppServer(create_app(mock)) as server:
        yield server


@pytest.fixture(scope="module")
def deviant_server(catalog: Catalog) -> Iterator[AppServer]:
    mock = FalMock(
        MockConfig(profile=get_profile("official"), keys=frozenset(KEYS), instant=True),
        clock=ManualClock(),
        catalog=catalog,
    )
    with AppServer(_deviant(create_app(mock))) as server:
        yield server


def _check_realtime(server: AppServer, catalog: Catalog, mode: str = "") -> Report:
    """The realtime scenario against `server` over the network, as `mockserver check` runs it."""
    _DEVIANCE["mode"] = mode
    scenarios = [s for s in load_scenarios() if s.id == "realtime"]
    target = Target(server.base_url, KEYS[0])
    settings = Settings(request_timeout=2.0)

    async def go() -> Report:
        async with httpx.AsyncClient() as client:
            checker = Checker(
                target, client, settings=settings, pacer=RealPacer(), websockets=open_websocket
            )
            return await checker.run(plan(scenarios, list(catalog), None))

    try:
        return asyncio.run(go())
    finally:
        _DEVIANCE["mode"] = ""


def test_the_mock_passes_realtime_over_a_socket(mock_server: AppServer, catalog: Catalog) -> None:
    report = _check_realtime(mock_server, catalog)
    assert _verdicts(report) == {
        "realtime-token": "pass",
        "realtime-roundtrip": "pass",
        "realtime-output": "pass",
    }
    assert report.submits == 1  # the input ran the model
    shown = json.dumps(report.to_json())
    assert KEYS[0] not in shown and "<token, " in shown  # the token's shape, never its value


@pytest.mark.parametrize(
    ("mode", "check", "verdict", "says"),
    [
        ("no-tokens", "realtime-offered", "note", "not offered"),
        ("no-socket", "realtime-offered", "note", "WebSocket is not offered"),
        ("token-object", "realtime-token", "fail", "@fal-ai/client uses the whole body"),
        ("error-frame", "realtime-roundtrip", "fail", "x-fal-error"),
        ("text-frame", "realtime-roundtrip", "fail", "not JSON"),
        ("closes", "realtime-roundtrip", "fail", "closed with code 1011"),
        ("silent", "realtime-roundtrip", "fail", "no answer"),
        ("other-output", "realtime-output", "note", "not the model's queue output"),
    ],
)
def test_live_mode_catches_each_realtime_deviation(
    deviant_server: AppServer, catalog: Catalog, mode: str, check: str, verdict: str, says: str
) -> None:
    report = _check_realtime(deviant_server, catalog, mode)
    found = report.by_check(check)
    assert [r.verdict.value for r in found] == [verdict], _verdicts(report)
    assert says in found[0].reason
    if mode == "other-output":  # the x-fal-message before it was skipped, the frame taken
        assert _verdicts(report)["realtime-roundtrip"] == "pass"


def test_in_process_the_socket_opens_into_the_app(clock: ManualClock, catalog: Catalog) -> None:
    app = create_app(make_mock("official", clock, catalog))
    report = run_check(app, clock, catalog, scenarios=("realtime",))
    assert _verdicts(report) == {
        "realtime-token": "pass",
        "realtime-roundtrip": "pass",
        "realtime-output": "pass",
    }
    # A checker given no way to open WebSockets says so instead of failing.
    report = run_check(app, clock, catalog, scenarios=("realtime",), websockets=False)
    assert _verdicts(report) == {"realtime-token": "pass", "realtime-roundtrip": "skip"}
    assert "needs a way to open WebSockets" in report.by_check("realtime-roundtrip")[0].reason


def test_gateway_request_id_passes_on_the_mock_and_is_a_note_when_missing(
    clock: ManualClock, catalog: Catalog
) -> None:
    app = create_app(make_mock("official", clock, catalog))
    report = run_check(app, clock, catalog, scenarios=("happy-path",), models=(SCHNELL,))
    assert _verdicts(report)["gateway-request-id"] == "pass"

    def drop(data: Any) -> Any:
        data.pop("gateway_request_id", None)
        return data

    stripped = _buffered(app, _json_edit(drop), _is_submit)
    report = run_check(stripped, clock, catalog, scenarios=("happy-path",), models=(SCHNELL,))
    [finding] = report.by_check("gateway-request-id")
    assert finding.verdict.value == "note" and "no gateway_request_id" in finding.reason
    assert report.ok  # no client reads it: the rest of the run is untouched

    def number(data: Any) -> Any:
        data["gateway_request_id"] = 7
        return data

    odd = _buffered(app, _json_edit(number), _is_submit)
    report = run_check(odd, clock, catalog, scenarios=("happy-path",), models=(SCHNELL,))
    [finding] = report.by_check("gateway-request-id")
    assert finding.verdict.value == "note" and "7" in finding.reason
