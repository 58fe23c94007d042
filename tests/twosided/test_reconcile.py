"""Many customer submits reconciled with the upstream's jobs (what a load run needs)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.check.pacing import RealPacer
from mockserver.check.results import Verdict
from mockserver.check.upstream import (
    LOAD_CHECKS,
    CustomerJob,
    Reconciliation,
    UpstreamControl,
    foreign_markers,
    forwarded_fields,
    judge_jobs,
    reconcile,
    run_marker,
)
from mockserver.markers import field_digests
from mockserver.redact import fingerprint
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


def _upstream(
    sent: dict[str, object], *, key: str = "key-intermediary", cancels: int = 0
) -> dict[str, object]:
    return {
        "request_id": "req-" + str(sent.get("prompt")),
        "key_fingerprint": key,
        "fields": field_digests(sent),
        "cancels": cancels,
    }


def test_judge_jobs_gives_each_job_a_verdict_per_check() -> None:
    sent = {"prompt": "p-ok", "seed": 7}
    jobs = [
        CustomerJob("p-ok", ENDPOINT, sent, accepted=True, request_id="r1", leak_scanned=True,
                    result_read=True),
        CustomerJob("p-twice", ENDPOINT, {"prompt": "p-twice"}, accepted=True, cancelled=True),
        CustomerJob("p-seedless", ENDPOINT, {"prompt": "p-seedless", "seed": 1}, accepted=True),
        CustomerJob("p-refused", ENDPOINT, {"prompt": "p-refused"}),
        CustomerJob("p-leaky", ENDPOINT, {"prompt": "p-leaky"}, accepted=True, leak_scanned=True,
                    leaks=["header x-upstream of GET /r"], result_read=True, foreign=["p-ok"]),
    ]  # fmt: skip
    marked = {
        "p-ok": [_upstream(sent)],
        "p-twice": [_upstream({"prompt": "p-twice"})] * 2,
        "p-seedless": [_upstream({"prompt": "p-seedless"})],
        "p-refused": [_upstream({"prompt": "p-refused"})],
        "p-leaky": [_upstream({"prompt": "p-leaky"}, key=fingerprint(CUSTOMER_KEYS[0]))],
        "p-stray": [_upstream({"prompt": "p-stray"})],
    }
    summary, verdicts = judge_jobs(jobs, marked, CUSTOMER_KEYS)
    failed = sorted(
        (v.marker, v.result.check) for v in verdicts if v.result.verdict is Verdict.FAIL
    )
    assert failed == [
        ("p-leaky", "customer-isolation"),
        ("p-leaky", "key-leak"),
        ("p-leaky", "upstream-key"),
        ("p-refused", "one-upstream-submit"),
        ("p-seedless", "forwarded-input"),
        ("p-stray", "one-upstream-submit"),
        ("p-twice", "cancel-forwarded"),
        ("p-twice", "one-upstream-submit"),
    ]
    assert {v.result.check for v in verdicts if v.marker == "p-ok"} == set(LOAD_CHECKS) - {
        "cancel-forwarded"
    }
    seedless = next(
        v.result
        for v in verdicts
        if v.marker == "p-seedless" and v.result.check == "forwarded-input"
    )
    assert "dropped seed" in seedless.reason
    assert len(summary.duplicated) == 1 and not summary.ok


def test_forwarded_fields_name_dropped_altered_and_added_fields() -> None:
    diff = forwarded_fields({"a": 1, "b": 2}, field_digests({"a": 1, "b": 3, "c": 4}))
    assert diff.describe() == "b: sent 2, forwarded another value; added c=<value>"
    assert foreign_markers("run-x-1 run-x-2 run-x-10 run-y-3", "run-x", "run-x-1") == [
        "run-x-10",
        "run-x-2",
    ]
