"""The plugin as its users meet it: small test projects run by pytester."""

from __future__ import annotations

import pytest

from tests.e2e.server import ServerPool

USES_FAL = """
import fal_client
import httpx

def test_flow(fal_mock):
    fal_client.subscribe("fal-ai/flux-1/dev", arguments={"prompt": "x"})
    fal_mock.assert_called("fal-ai/flux-1/dev", times=1)
"""


def test_plugin_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*fal queue mock*", "*--fal-live-url=URL*"])
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.fal_mock(profile=*"])


def test_fal_client_code_passes_unchanged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USES_FAL)
    pytester.runpytest().assert_outcomes(passed=1)


def test_marker_configures_the_mock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marker="""
import httpx
import pytest

@pytest.mark.fal_mock(profile="intermediary", outcomes={"fal-ai/flux-1/dev": "infra_error"})
def test_marker(fal_mock):
    assert fal_mock.auth_scheme == "Bearer"
    queued = httpx.post("https://queue.fal.run/fal-ai/flux-1/dev", json={"prompt": "x"},
                        headers=fal_mock.headers).json()
    result = httpx.get(queued["response_url"], headers=fal_mock.headers)
    assert result.status_code == 503
    assert result.json()["error_type"] == "runner_disconnected"
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_ini_options(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
[pytest]
fal_mock_profile = intermediary
fal_mock_queue_seconds = 10
fal_mock_intermediary_urls = https://gw.example.test
"""
    )
    pytester.makepyfile(
        test_ini="""
import httpx

def test_ini(fal_mock):
    assert fal_mock.base_url == "https://gw.example.test"
    queued = httpx.post("https://gw.example.test/fal-ai/flux-1/dev", json={"prompt": "x"},
                        headers=fal_mock.headers).json()
    status_url = queued["status_url"].replace("https://queue.fal.run", fal_mock.base_url)
    assert httpx.get(status_url, headers=fal_mock.headers).json()["status"] == "IN_QUEUE"
    fal_mock.advance(11)
    assert httpx.get(status_url, headers=fal_mock.headers).json()["status"] == "COMPLETED"
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_failure_message_of_assert_called(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fails="""
import fal_client

def test_wrong_model(fal_mock):
    fal_client.submit("fal-ai/flux-1/dev", arguments={"prompt": "x"})
    fal_mock.assert_called("fal-ai/flux-1/schnell")
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: expected submit of fal-ai/flux-1/schnell at least once, got 0.",
            "*calls made:",
            "*POST /fal-ai/flux-1/dev -> 200 (submit)",
        ]
    )


def test_failure_message_of_assert_nothing_unexpected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fails="""
import httpx

def test_typo(fal_mock):
    headers = fal_mock.headers
    httpx.post("https://queue.fal.run/fal-ai/flux-1/devv", json={"prompt": "x"}, headers=headers)
    httpx.post("https://queue.fal.run/fal-ai/flux-1/dev", json={"prompt": "x"})
    fal_mock.assert_nothing_unexpected()
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: 2 request(s) to the fal mock were refused:",
            "*POST /fal-ai/flux-1/devv -> 404 (submit)",
            "*POST /fal-ai/flux-1/dev -> 401 (submit)",
        ]
    )


def test_assert_not_called_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fails="""
import fal_client

def test_called(fal_mock):
    fal_client.run("fal-ai/flux-1/schnell", arguments={"prompt": "x"})
    fal_mock.assert_not_called()
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*expected no calls to the fal mock, got 1.", "*/fal-ai/flux-1/schnell -> 200 (run)"]
    )


LIVE_TESTS = """
import httpx

def test_live_flow(fal_mock):
    queued = httpx.post(f"{fal_mock.base_url}/fal-ai/flux-1/dev", json={"prompt": "x"},
                        headers=fal_mock.headers).json()
    assert queued["request_id"]

def test_needs_the_mock(fal_mock):
    fal_mock.advance(1)
"""


def test_live_switch_without_a_key_skips_with_a_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIVE_KEY", raising=False)
    pytester.makepyfile(test_live=LIVE_TESTS)
    result = pytester.runpytest(
        "--fal-live-url", "https://example.invalid", "--fal-live-key-env", "LIVE_KEY", "-rs"
    )
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*--fal-live-url is set but $LIVE_KEY holds no key*"])


@pytest.mark.e2e
def test_live_switch_runs_the_same_tests_against_a_service(
    mock_servers: ServerPool, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE_KEY", "live-secret")
    pytester.makepyfile(test_live=LIVE_TESTS)
    # The live scheme defaults to the profile's (bearer for an intermediary).
    pytester.makeini("[pytest]\nfal_mock_profile = intermediary\n")
    base = mock_servers.get("--profile", "intermediary", "--instant")
    result = pytester.runpytest("--fal-live-url", base, "--fal-live-key-env", "LIVE_KEY", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*fal_mock.advance needs the mock; this test runs against a live service*"]
    )
    assert "live-secret" not in result.stdout.str()


def test_failure_message_of_assert_delivered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fails="""
import fal_client

def test_hook_is_off_the_allow_list(fal_mock):
    handle = fal_client.submit(
        "fal-ai/flux-1/dev", arguments={"prompt": "x"},
        webhook_url="https://hooks.example.net/fal",
    )
    fal_mock.webhooks.deliver()
    fal_mock.webhooks.assert_delivered(handle.request_id, status="OK")
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: no delivered webhook for request * with status OK.",
            "*attempts:",
            "*#1 https://hooks.example.net/fal -> not sent: the host is not on the webhook"
            " allow-list*",
        ]
    )
