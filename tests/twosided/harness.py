"""The two-sided check in process: checker -> reference intermediary -> mock (ASGI)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.check.pacing import RealPacer
from mockserver.check.results import CheckResult
from mockserver.check.twosided import Customer, TwoSidedChecker
from mockserver.check.upstream import UpstreamControl
from mockserver.transport import AppTransport
from tests.twosided.intermediary import Intermediary, create_intermediary

UPSTREAM_KEY = "upstream-id:upstream-secret-value"
CUSTOMER_KEYS = ("customer-one-key", "customer-two-key")
PROXY = "http://proxy.test"
UPSTREAM = "http://mock.upstream"
ENDPOINT = "fal-ai/flux-1/schnell"


@dataclass
class TwoSidedRun:
    """What one in-process two-sided check produced, and the parts it ran on."""

    results: list[CheckResult]
    submits: int
    proxy: Intermediary
    mock: FalMock

    def outcomes(self, check: str) -> list[str]:
        """The outcomes of every result of the check named `check`."""
        return [r.verdict.value for r in self.results if r.check == check]

    def failed(self) -> list[CheckResult]:
        """The failures."""
        return [r for r in self.results if r.verdict.value == "fail"]


def run_two_sided(
    *faults: str, second_customer: bool = True, upstream_elsewhere: bool = False
) -> TwoSidedRun:
    """The two-sided check against the reference intermediary with `faults`.

    `upstream_elsewhere`: the intermediary's upstream is another mock than the
    one the checker reads (as if it still called real fal).
    """
    clock = ManualClock()
    mock = FalMock(MockConfig(keys=frozenset({UPSTREAM_KEY}), instant=True), clock=clock)
    mock_app = create_app(mock)
    elsewhere = FalMock(MockConfig(instant=True), clock=clock, catalog=mock.catalog)
    upstream_app = create_app(elsewhere) if upstream_elsewhere else mock_app
    proxy, proxy_app = create_intermediary(
        UPSTREAM, UPSTREAM_KEY, CUSTOMER_KEYS, faults, transport=AppTransport(upstream_app)
    )
    customer = Customer(
        PROXY, CUSTOMER_KEYS[0], "Bearer", CUSTOMER_KEYS[1] if second_customer else None
    )

    async def go() -> TwoSidedRun:
        mounts = {PROXY: AppTransport(proxy_app), UPSTREAM: AppTransport(mock_app)}
        async with httpx.AsyncClient(mounts=mounts) as client:
            pacer = RealPacer()
            control = UpstreamControl(client, UPSTREAM + "/_mock", pacer, 10.0)
            model = mock.catalog.get(ENDPOINT)
            assert model is not None
            checker = TwoSidedChecker(customer, control, client, model, pacer)
            results = await checker.run()
            await proxy.client.aclose()
            return TwoSidedRun(results, checker.submits, proxy, mock)

    return asyncio.run(go())
