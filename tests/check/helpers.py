"""Running the checker against the mock in process (manual clock, no sleeping)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.catalog import Catalog
from mockserver.check import Checker, ManualPacer, Report, Settings, Target, load_scenarios, plan
from mockserver.check.realtime import app_websockets
from mockserver.profiles import get_profile
from mockserver.transport import AppTransport

KEYS = ("first-secret-key", "second-secret-key")
BASE = "http://mock.test"
ASGIApp = Any


def make_mock(profile: str, clock: ManualClock, catalog: Catalog, **config: Any) -> FalMock:
    """A mock that accepts only the two test keys (so a wrong key is refused)."""
    return FalMock(
        MockConfig(profile=get_profile(profile), keys=frozenset(KEYS), **config),
        clock=clock,
        catalog=catalog,
    )


def scheme_of(profile: str) -> str:
    return "Bearer" if profile == "intermediary" else "Key"


def run_check(
    app: ASGIApp,
    clock: ManualClock,
    catalog: Catalog,
    *,
    scheme: str = "Key",
    scenarios: tuple[str, ...] = (),
    models: tuple[str, ...] = (),
    settings: Settings | None = None,
    second_key: bool = True,
    websockets: bool = True,
) -> Report:
    """Every (selected) shipped scenario against `app`, in process (WebSockets too,
    unless `websockets` is False)."""
    chosen = [s for s in load_scenarios() if not scenarios or s.id in scenarios]
    endpoints = [m for m in catalog if not models or m.endpoint_id in models]
    target = Target(BASE, KEYS[0], scheme, KEYS[1] if second_key else None)  # type: ignore[arg-type]

    async def go() -> Report:
        async with httpx.AsyncClient(transport=AppTransport(app)) as client:
            checker = Checker(
                target,
                client,
                settings=settings or Settings(),
                pacer=ManualPacer(clock),
                websockets=app_websockets(app) if websockets else None,
            )
            return await checker.run(plan(chosen, endpoints, None))

    return asyncio.run(go())


def mock_app(profile: str, clock: ManualClock, catalog: Catalog, **config: Any) -> ASGIApp:
    return create_app(make_mock(profile, clock, catalog, **config))


def verdicts(report: Report, check: str) -> set[str]:
    """The verdicts one named check ended with, across the report."""
    return {r.verdict.value for r in report.by_check(check)}


def failures(report: Report) -> dict[str, list[str]]:
    """check name -> reasons, for every failed check (readable assertion output)."""
    found: dict[str, list[str]] = {}
    for result in report.results:
        if result.verdict.value == "fail":
            found.setdefault(result.check, []).append(f"{result.name}: {result.reason}")
    return found


#: Every kind of check the shipped scenarios run against any conforming server
#: (the profile-specific `url-origin` and `auth-scheme` notes aside).
SCENARIO_CHECKS = frozenset(
    {
        "submit-accepted",
        "url-shape",
        "completes",
        "status-codes",
        "logs-key",
        "status-order",
        "result",
        "output-schema",
        "media-download",
        "media-size",
        "num-images",
        "image-size",
        "seed-echo",
        "output-format",
        "cancel-queued",
        "cancel-completed",
        "result-early-400",
        "unknown-id-404",
        "auth-none",
        "auth-wrong-key",
        "auth-wrong-scheme",
        "validation-422",
        "stream-events",
        "stream-closes",
        "status-stream-equivalent",
        "cross-key-404",
        "gateway-request-id",
        "realtime-token",
        "realtime-roundtrip",
        "realtime-output",
    }
)
#: The realtime scenario's checks (a server may not offer realtime: a note instead).
REALTIME_CHECKS = frozenset({"realtime-token", "realtime-roundtrip", "realtime-output"})
