"""One vocabulary for the library (`FalMock`) and the fixtures (`fal_mock`)."""

from __future__ import annotations

import fal_client
import httpx
import pytest

from mockserver import FalMock, ManualClock, MockConfig
from mockserver.faults import Fault
from mockserver.testing import FalMockFixture, InProcessFal

DEV = "fal-ai/flux-1/dev"


def test_add_fault_takes_a_fault_or_its_fields_on_both(fal_mock: InProcessFal) -> None:
    for owner in (fal_mock, fal_mock.mock):
        by_fields = owner.add_fault(status_code=503, action="submit")
        by_object = owner.add_fault(Fault(status_code=503, action="submit"))
        assert {**by_fields.to_json(), "id": 0} == {**by_object.to_json(), "id": 0}
        with pytest.raises(TypeError, match="a Fault or its fields"):
            owner.add_fault()
        with pytest.raises(TypeError, match="a Fault or its fields"):
            owner.add_fault(Fault(drop=True), action="status")
    assert len(fal_mock.mock.faults.pending()) == 4


def test_next_outcome_without_an_outcome_says_it_is_going(fal_mock: FalMockFixture) -> None:
    with pytest.warns(DeprecationWarning, match="pass outcome='model_error'"):
        fal_mock.next_outcome(DEV)
    with pytest.raises(fal_client.client.FalClientHTTPError):
        fal_client.subscribe(DEV, arguments={"prompt": "x"})


def test_advance_delivers_due_webhooks_in_the_library_too() -> None:
    received: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    mock = FalMock(MockConfig(), clock=ManualClock())
    mock.webhooks.route_to(httpx.MockTransport(receive))
    model = mock.model_for(DEV)
    mock.submit(model, "t", {"prompt": "x"}, base_url="http://m", webhook="http://127.0.0.1:9/h")
    mock.advance(30)
    assert len(received) == 1 and len(mock.webhooks.attempts) == 1


def test_old_transport_names_still_work_and_say_so() -> None:
    import mockserver.transport as transport

    with pytest.warns(DeprecationWarning, match="now AppTransport"):
        assert transport.MockTransport is transport.AppTransport
    with pytest.warns(DeprecationWarning, match="now SyncAppTransport"):
        old = transport.SyncMockTransport
    assert old is transport.SyncAppTransport


@pytest.mark.parametrize(("given", "sent"), [("key", "Key"), ("Bearer", "Bearer"), (None, "Key")])
def test_live_auth_scheme_is_spelled_as_the_cli_spells_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, given: str | None, sent: str
) -> None:
    monkeypatch.setenv("LIVE_KEY", "k")
    pytester.makepyfile(
        test_scheme=f"""
def test_scheme(fal_mock):
    assert fal_mock.auth_scheme == {sent!r}
"""
    )
    scheme = ["--fal-live-auth-scheme", given] if given else []
    result = pytester.runpytest(
        "--fal-live-url", "https://example.invalid", "--fal-live-key-env", "LIVE_KEY", *scheme
    )
    result.assert_outcomes(passed=1)


def test_a_checks_verdict_is_not_called_an_outcome() -> None:
    import mockserver.check as check
    from mockserver.outcomes import Outcome

    assert check.Verdict.FAIL.value == "fail"
    with pytest.warns(DeprecationWarning, match="now mockserver.check.Verdict"):
        assert check.Outcome is check.Verdict
    assert check.Verdict is not Outcome
    # The class is the verdict under its one name: no module of check/ defines an Outcome.
    assert check.Verdict.__name__ == "Verdict"


def test_a_results_verdict_field_keeps_its_old_spelling_with_a_warning() -> None:
    from mockserver.check import CheckResult, Finding, Verdict

    result = CheckResult("happy", DEV, "result", Verdict.NOTE, "why")
    assert result.to_json()["verdict"] == "note"
    with pytest.warns(DeprecationWarning, match="CheckResult.outcome is now CheckResult.verdict"):
        assert result.outcome is Verdict.NOTE
    finding = Finding.of("result", Verdict.FAIL, "why")
    with pytest.warns(DeprecationWarning, match="Finding.outcome is now Finding.verdict"):
        assert finding.outcome is Verdict.FAIL


def test_the_results_module_still_answers_the_old_name() -> None:
    from mockserver.check import results

    with pytest.warns(DeprecationWarning, match="results.Outcome is now"):
        assert results.Outcome is results.Verdict
