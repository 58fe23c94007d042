"""The two-sided check against the reference intermediary in front of the mock, in process."""

from __future__ import annotations

import pytest

from mockserver.check.twosided import BILLABLE_SUBMITS
from mockserver.check.upstream import input_diff, leaked
from mockserver.redact import fingerprint, key_fingerprints
from tests.twosided.harness import CUSTOMER_KEYS, UPSTREAM_KEY, run_two_sided
from tests.twosided.intermediary import FAULTS

#: The check each fault of the reference intermediary must fail.
CAUGHT_BY = {
    "drop_param": "forwarded-input",
    "double_submit": "one-upstream-submit",
    "leak_key": "key-leak",
    "cross_customers": "customer-isolation",
    "swallow_cancel": "cancel-forwarded",
    "mask_422": "outcome-model-error",
}


def test_every_fault_has_a_check() -> None:
    assert set(CAUGHT_BY) == set(FAULTS)


def test_faithful_intermediary_passes_with_every_billable_submit_on_the_mock() -> None:
    run = run_two_sided()
    assert run.failed() == []
    checks = {r.check for r in run.results}
    assert set(CAUGHT_BY.values()) | {"fal-headers", "webhook-forwarded", "upstream-key"} <= checks
    assert {"outcome-infra-503", "outcome-infra-504", "outcome-slow", "outcome-expired"} <= checks
    assert all(outcome == "pass" for outcome in run.outcomes("upstream-key"))
    # Every accepted customer submit was billed exactly once, and only on the mock.
    billed = [r for r in run.mock.requests if r.action == "submit" and r.status_code == 200]
    assert len(billed) == run.submits == BILLABLE_SUBMITS
    assert run.proxy.hosts_called == {"mock.upstream"}
    # The upstream saw the intermediary's key, never a customer's.
    seen = {r.key_fingerprints[0] for r in run.mock.requests if r.key_fingerprints}
    assert seen == {fingerprint(UPSTREAM_KEY)}


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
def test_each_fault_fails_its_check_with_evidence_from_both_sides(fault: str) -> None:
    run = run_two_sided(fault)
    check = CAUGHT_BY[fault]
    failures = [r for r in run.failed() if r.check == check]
    assert failures, f"{fault} was not caught by {check}: {run.failed()}"
    evidence = [e for r in failures for e in r.evidence]
    customer_side = [e for e in evidence if not e.url.startswith("upstream ")]
    assert customer_side, "no evidence from the customer's side"
    if fault != "leak_key":  # a leak is seen on the customer's side only
        assert any(e.url.startswith("upstream ") for e in evidence), "no upstream evidence"
    assert run.proxy.hosts_called == {"mock.upstream"}
    for result in run.results:  # keys never appear in a report
        text = repr(result.to_json())
        assert all(k not in text for k in (*CUSTOMER_KEYS, *UPSTREAM_KEY.split(":")))


def test_isolation_needs_a_second_customer() -> None:
    run = run_two_sided(second_customer=False)
    assert run.outcomes("customer-isolation") == ["skip"]
    assert run.failed() == []


def test_input_diff_field_by_field() -> None:
    diff = input_diff({"prompt": "a", "seed": 1, "n": 2}, {"prompt": "a", "n": 3, "steps": 28})
    assert diff.dropped == ("seed",)
    assert diff.altered == (("n", 2, 3),)
    assert diff.added == (("steps", 28),)
    assert not diff.faithful
    assert input_diff({"a": 1}, {"a": 1, "b": 2}).faithful


def test_leak_found_by_fingerprint_of_a_key_or_either_half() -> None:
    prints = set(key_fingerprints("Key kid-123456:secret-abcdef"))
    assert leaked([("h", "Key kid-123456:secret-abcdef")], prints) == ["h"]
    assert leaked([("b", '{"x": "secret-abcdef"}')], prints) == ["b"]
    assert leaked([("c", "nothing secret-abcdeg here")], prints) == []


def test_an_intermediary_whose_upstream_is_not_the_mock_is_stopped_after_one_submit() -> None:
    run = run_two_sided(upstream_elsewhere=True)
    assert [r.check for r in run.failed()] == ["upstream-is-mock"]
    assert "Two-sided run stopped" in run.failed()[0].reason
    assert run.submits == 1  # nothing more was sent through it


def test_a_field_the_intermediary_adds_is_a_note_not_a_failure() -> None:
    run = run_two_sided("add_default")
    assert run.failed() == []
    (added,) = [r for r in run.results if r.check == "forwarded-input"]
    assert added.verdict.value == "note"
    assert "added num_inference_steps=4" in added.reason
