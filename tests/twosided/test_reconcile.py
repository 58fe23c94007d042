"""Many customer submits reconciled with the upstream's jobs (what a load run needs)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.check.pacing import RealPacer
from mockserver.check.upstream import Reconciliation, UpstreamControl, reconcile, run_marker
from mockserver.transport import AppTransport
from tests.twosided.harness import CUSTOMER_KEYS, ENDPOINT, PROXY, UPSTREAM, UPSTREAM_KEY
from tests.twosided.intermediary import create_intermediary

CUSTOMERS = 12


def _burst(*faults: str, forward_key: bool = False) -> Reconciliation:
    """CUSTOMERS concurrent submits through the intermediary, then reconciled."""
    mock = FalMock(MockConfig(instant=True), clock=ManualClock())
    mock_app = create_app(mock)
    _, proxy_app = create_intermediary(
        UPSTREAM,
        CUSTOMER_KEYS[0] if forward_key else UPSTREAM_KEY,
        CUSTOMER_KEYS,
        faults,
        transport=AppTransport(mock_app),
    )
    prefix = run_marker()

    async def go() -> Reconciliation:
        mounts = {PROXY: AppTransport(proxy_app), UPSTREAM: AppTransport(mock_app)}
        async with httpx.AsyncClient(mounts=mounts) as client:
            auth = {"Authorization": f"Bearer {CUSTOMER_KEYS[0]}"}

            async def submit(n: int) -> str | None:
                marker = f"{prefix}-{n}"
                answer = await client.post(
                    f"{PROXY}/{ENDPOINT}", json={"prompt": marker}, headers=auth
                )
                return marker if answer.status_code == 200 else None

            control = UpstreamControl(client, UPSTREAM + "/_mock", RealPacer(), 10.0)
            assert await control.watch(prefix)
            markers = await asyncio.gather(*(submit(n) for n in range(CUSTOMERS)))
            mock.advance(7200)  # past the inputs' retention: the counts stay
            marked = await control.marked(prefix)
            return reconcile([m for m in markers if m], marked, CUSTOMER_KEYS)

    return asyncio.run(go())


def test_faithful_intermediary_reconciles_one_job_per_accepted_submit() -> None:
    result = _burst()
    assert result.ok, result.describe()
    assert result.accepted == result.billed == CUSTOMERS


def test_double_submits_are_counted_as_extra_billing() -> None:
    result = _burst("double_submit")
    assert not result.ok
    assert len(result.duplicated) == CUSTOMERS
    assert f"{CUSTOMERS} submitted more than once ({CUSTOMERS} extra billed)" in result.describe()


def test_a_customer_key_sent_upstream_is_counted() -> None:
    result = _burst(forward_key=True)
    assert result.customer_keyed == CUSTOMERS and not result.ok


@pytest.mark.parametrize(
    ("accepted", "found", "problem"),
    [(["p-1", "p-2"], ["p-1"], "missing"), (["p-1"], ["p-1", "p-3"], "unclaimed")],
)
def test_reconcile_names_missing_and_unclaimed(
    accepted: list[str], found: list[str], problem: str
) -> None:
    marked = {m: [{"request_id": "r", "key_fingerprint": "key-0"}] for m in found}
    result = reconcile(accepted, marked)
    assert getattr(result, problem) and not result.ok
