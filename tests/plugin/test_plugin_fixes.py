"""Bugs of the plugin, each reproduced by a small project run by pytester."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_fal_server_timing_does_not_leak_into_the_next_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_timing="""
import httpx

def _status(fal_server):
    queued = httpx.post(f"{fal_server.base_url}/fal-ai/flux-1/dev", json={"prompt": "x"},
                        headers=fal_server.headers).json()
    return httpx.get(queued["status_url"], headers=fal_server.headers).json()["status"]

def test_slow(fal_server):
    fal_server.set_timing(queue_seconds=10, run_seconds=10)
    assert _status(fal_server) == "IN_QUEUE"

def test_instant_again(fal_server):
    assert _status(fal_server) == "COMPLETED"
"""
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_fal_server_takes_the_ini_options_and_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfal_mock_profile = intermediary\nfal_mock_queue_seconds = 5\n")
    pytester.makepyfile(
        test_server="""
import httpx
import subprocess
import sys

import pytest

def _submit(fal_server):
    return httpx.post(f"{fal_server.base_url}/fal-ai/flux-1/dev", json={"prompt": "x"},
                      headers=fal_server.headers).json()

def test_ini(fal_server):
    assert fal_server.auth_scheme == "Bearer"
    # an intermediary answers with fal's URLs
    status_url = _submit(fal_server)["status_url"]
    status_url = status_url.replace("https://queue.fal.run", fal_server.base_url)
    assert httpx.get(status_url, headers=fal_server.headers).json()["status"] == "IN_QUEUE"

@pytest.mark.fal_mock(profile="official", outcomes={"fal-ai/flux-1/dev": "infra_error"},
                      queue_seconds=0, run_seconds=0)
def test_marker(fal_server):
    assert fal_server.auth_scheme == "Key"
    result = httpx.get(_submit(fal_server)["response_url"], headers=fal_server.headers)
    assert result.status_code == 503

def test_ini_again(fal_server):
    assert fal_server.auth_scheme == "Bearer"
"""
    )
    pytester.runpytest().assert_outcomes(passed=3)


LIVE_TYPO = """
def test_typo(fal_mock):
    fal_mock.asert_caled("fal-ai/flux-1/dev")

def test_control(fal_mock):
    fal_mock.assert_called("fal-ai/flux-1/dev")
"""


def test_a_typo_in_live_mode_fails_instead_of_skipping(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE_KEY", "live-secret")
    pytester.makepyfile(test_live=LIVE_TYPO)
    result = pytester.runpytest(
        "--fal-live-url", "https://example.invalid", "--fal-live-key-env", "LIVE_KEY", "-rs"
    )
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*AttributeError: fal_mock has no attribute 'asert_caled'"
            " (did you mean 'assert_called'?)*",
            "*fal_mock.assert_called needs the mock; this test runs against a live service*",
        ]
    )


def test_backup_domains_are_answered_by_the_mock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_backup="""
import httpx

def test_backup(fal_mock):
    queued = httpx.post("https://queue.falrun.com/fal-ai/flux-1/dev", json={"prompt": "x"},
                        headers=fal_mock.headers).json()
    assert httpx.get(queued["response_url"], headers=fal_mock.headers).json()["prompt"] == "x"
    ran = httpx.post("https://falrun.com/fal-ai/flux-1/schnell", json={"prompt": "y"},
                     headers=fal_mock.headers)
    assert ran.status_code == 200 and ran.json()["images"]
    fal_mock.assert_called("fal-ai/flux-1/dev")
    fal_mock.assert_called("fal-ai/flux-1/schnell", action="run")
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_an_unknown_fal_host_fails_the_test_even_when_the_error_is_swallowed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_unknown="""
import httpx
import subprocess
import sys

import pytest
from mockserver.intercept import UnmockedFalHost

def test_raises(fal_mock):
    with pytest.raises(UnmockedFalHost, match="gateway.fal.ai looks like a fal host"):
        httpx.get("https://gateway.fal.ai/anything?token=secret")

def test_swallowed(fal_mock):
    try:
        httpx.get("https://some-app.fal.run/")
    except Exception:
        pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*requests to fal hosts the mock does not answer were stopped:",
            "*https://gateway.fal.ai/anything",
            "*https://some-app.fal.run/",
        ]
    )
    assert "token=secret" not in result.stdout.str()


def test_each_test_gets_a_fresh_mock_over_contracts_loaded_once(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_reuse="""
seen = []

def test_one(fal_mock):
    seen.append((fal_mock.mock, fal_mock.mock.catalog))
    fal_mock.next_outcome("fal-ai/flux-1/dev", "model_error")

def test_two(fal_mock):
    mock, catalog = seen[0]
    assert fal_mock.mock is not mock and fal_mock.mock.catalog is catalog
    assert fal_mock.requests == []
    assert fal_mock.mock.outcomes.take("fal-ai/flux-1/dev").kind == "success"
"""
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_the_app_is_built_once_per_process_and_nothing_leaks_through_it(
    pytester: pytest.Pytester,
) -> None:
    # The second test borrows the app the first one used: it must see a mock
    # as new as if the app were new too (jobs, requests, faults, timing, clock).
    pytester.makepyfile(
        test_shared="""
import fal_client
import httpx
from mockserver.testing import APPS

seen = {}

def test_one(fal_mock):
    handle = fal_client.submit("fal-ai/flux-1/dev", arguments={"prompt": "x"})
    seen.update(id=handle.request_id, app=fal_mock.app, built=APPS.built,
                start=fal_mock.mock.clock.now(), mock=fal_mock.mock)
    fal_mock.set_timing(queue_seconds=5)
    fal_mock.add_fault(status_code=503, action="status")
    fal_mock.next_outcome("fal-ai/flux-1/dev", "model_error")
    fal_mock.advance(60)

def test_two(fal_mock):
    assert fal_mock.app is seen["app"] and APPS.built == seen["built"]
    assert fal_mock.app.state.mock is fal_mock.mock is not seen["mock"]
    assert fal_mock.mock.clock.now() == seen["start"]
    assert fal_mock.requests == [] and fal_mock.mock.faults.pending() == []
    old = f"https://queue.fal.run/fal-ai/flux-1/requests/{seen['id']}/status"
    assert httpx.get(old, headers=fal_mock.headers).status_code == 404
    # instant timing and a success again: no advance, no error
    assert fal_client.subscribe("fal-ai/flux-1/dev", arguments={"prompt": "x"})["images"]
"""
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_mocks_alive_at_once_each_have_their_own_app(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_nested="""
import fal_client
from mockserver.testing import InProcessFal, MockOptions

def test_nested(fal_mock):
    inner = InProcessFal(MockOptions()).start()
    try:
        assert inner.app is not fal_mock.app
        fal_client.submit("fal-ai/flux-1/dev", arguments={"prompt": "x"})
        assert len(inner.requests) == 1  # the latest started answers
    finally:
        inner.stop()
    fal_client.submit("fal-ai/flux-1/dev", arguments={"prompt": "x"})
    assert len(fal_mock.requests) == 1 and len(inner.mock.requests) == 1

def test_a_stopped_mock_leaves_its_app_serving_nothing():
    fal = InProcessFal(MockOptions()).start()
    app = fal.app
    fal.stop()
    assert app.state.mock is None  # nothing of the test stays reachable through the pool
"""
    )
    pytester.runpytest().assert_outcomes(passed=2)


HEAVY = ("starlette", "PIL", "jsonschema", "fastjsonschema", "yaml", "cryptography", "uvicorn")


@pytest.mark.parametrize(
    ("module", "heavy"),
    [
        # pytest imports the plugin in every run, fixtures used or not
        ("mockserver.pytest_plugin", (*HEAVY, "httpx", "rich")),
        # httpx itself imports rich (its command line), so only the server's are checked
        ("mockserver.client", HEAVY),
    ],
)
def test_the_plugin_and_the_client_import_only_what_they_use(
    module: str, heavy: tuple[str, ...]
) -> None:
    code = f"import sys, {module}\nprint(' '.join(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""


# What the first test of a suite pays for: a subscribe under the mock imports
# none of what only other features need (scripted-output and error checks,
# webhook signatures, image bytes).
_FIRST_TEST = """
import os, sys
import fal_client
from mockserver.testing import InProcessFal, MockOptions

fal = InProcessFal(MockOptions()).start()
os.environ["FAL_KEY"] = fal.key
try:
    assert fal_client.subscribe("fal-ai/flux-1/dev", arguments={"prompt": "x"})["images"]
finally:
    fal.stop()
print(" ".join(m for m in ("jsonschema", "PIL", "cryptography") if m in sys.modules))
"""


def test_a_first_subscribe_imports_only_what_it_uses() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_TEST], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_next_output_chooses_the_result(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_output="""
import fal_client
import httpx
import pytest
from mockserver.mock import InvalidOutput

DEV = "fal-ai/flux-1/dev"
IMAGE = {"url": "https://v3.fal.media/files/a.png", "width": 8, "height": 8,
         "content_type": "image/png"}

def test_whole_output(fal_mock):
    output = {"images": [IMAGE], "timings": {}, "seed": 7, "has_nsfw_concepts": [True],
              "prompt": "p"}
    fal_mock.next_output(DEV, output)
    assert fal_client.subscribe(DEV, arguments={"prompt": "x"}) == output
    assert fal_client.subscribe(DEV, arguments={"prompt": "x"})["has_nsfw_concepts"] == [False]

def test_merge(fal_mock):
    fal_mock.next_output(DEV, merge={"has_nsfw_concepts": [True]}, times=2)
    for _ in range(2):
        result = fal_client.subscribe(DEV, arguments={"prompt": "x"})
        assert result["has_nsfw_concepts"] == [True] and result["prompt"] == "x"

def test_wrong_shape_fails_at_the_call(fal_mock):
    with pytest.raises(InvalidOutput, match="images.0: 'url' is a required property"):
        fal_mock.next_output(DEV, merge={"images": [{"width": 1}]})
    with pytest.raises(InvalidOutput, match="needs a known endpoint"):
        fal_mock.next_output("*", {"images": []})
    fal_mock.assert_not_called()

def test_over_http(fal_mock):
    control = "https://queue.fal.run/_mock/outcomes"
    bad = httpx.post(control, json={"endpoint_id": DEV,
                                    "outcome": {"merge": {"seed": "not a number"}}})
    assert bad.status_code == 422 and "seed: 'not a number' is not of type" in bad.json()["detail"]
    ok = httpx.post(control, json={"endpoint_id": DEV, "outcome": {"merge": {"seed": 5}}})
    assert ok.status_code == 200 and ok.json()["outcome"]["merge"] == {"seed": 5}
    assert fal_client.subscribe(DEV, arguments={"prompt": "x"})["seed"] == 5

@pytest.mark.fal_mock(outcomes={DEV: {"merge": {"prompt": "from the marker"}}})
def test_marker(fal_mock):
    assert fal_client.subscribe(DEV, arguments={"prompt": "x"})["prompt"] == "from the marker"
"""
    )
    pytester.runpytest().assert_outcomes(passed=5)


def test_a_marker_with_a_wrong_output_is_an_error_of_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marker="""
import pytest

@pytest.mark.fal_mock(outcomes={"fal-ai/flux-1/dev": {"output": {"images": "none"}}})
def test_marker(fal_mock):
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*InvalidOutput: the output for fal-ai/flux-1/dev*"])


def test_xdist_workers_each_have_their_own_mock_and_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_parallel="""
import os
import pathlib

import fal_client
import httpx
import pytest

@pytest.mark.parametrize("n", range(4))
def test_both(fal_mock, fal_server, n):
    fal_client.subscribe("fal-ai/flux-1/dev", arguments={"prompt": str(n)})
    fal_mock.assert_called("fal-ai/flux-1/dev", times=1)
    assert httpx.get(f"{fal_server.base_url}/_mock/health").json()["status"] == "ok"
    worker = os.environ["PYTEST_XDIST_WORKER"]
    with open(pathlib.Path(__file__).parent / "ports.txt", "a") as out:
        out.write(f"{worker} {fal_server.port}\\n")
"""
    )
    result = pytester.runpytest("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    lines = (pytester.path / "ports.txt").read_text().split()
    ports: dict[str, set[str]] = {}
    for worker, port in zip(lines[::2], lines[1::2], strict=True):
        ports.setdefault(worker, set()).add(port)
    assert sorted(ports) == ["gw0", "gw1"]
    assert all(len(p) == 1 for p in ports.values())  # one server per worker...
    assert ports["gw0"] != ports["gw1"]  # ...each its own
