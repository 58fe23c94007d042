"""The built wheel, installed into a fresh virtualenv, serves a separate project.

This is how users get the plugin: the wheel (`make dist`) installed into their
own environment. The contracts must be inside the wheel, the sample project's
tests (examples/sample_app) must pass with nothing else from this checkout, and
a user's suite using every fixture, marker option and ini option must pass,
with and without pytest-xdist.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    print(f"{time.monotonic() - started:6.1f}s  {' '.join(map(str, command))[:120]}")
    return done


# Installing into a fresh virtualenv is most of it (minutes on a busy machine).
@pytest.mark.timeout(900)
def test_wheel_in_a_fresh_venv_runs_the_sample_project(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    # As `make dist` builds it: with this environment's hatchling, nothing fetched.
    _run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", wheels, ROOT)
    [wheel] = wheels.glob("fal_queue_harness-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mockserver/_contracts/models/fal-ai/flux-1/dev.yaml" in names
    assert "mockserver/_contracts/media/sample-video.mp4" in names
    assert "mockserver/_contracts/protocol/definitions.yaml" in names
    assert "mockserver/py.typed" in names

    # A venv without its own pip, filled by this one's (`pip --python`): bootstrapping
    # pip into every fresh venv costs more than the rest of the test.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python)
    _run(*pip, "install", "--quiet", f"{wheel}[tls]", "pytest", "pytest-xdist", "fal-client")

    project = tmp_path / "sample_app"
    shutil.copytree(ROOT / "examples" / "sample_app", project)
    done = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert "3 passed" in done.stdout
    # and the installed command serves the shipped contracts
    listing = _run(venv / "bin" / "mockserver", "contracts", "list")
    assert "fal-ai/flux-1/dev" in listing.stdout

    suite = tmp_path / "user_suite"
    suite.mkdir()
    contracts = suite / "contracts"
    contracts.mkdir()
    dev = (ROOT / "contracts" / "models" / "fal-ai" / "flux-1" / "dev.yaml").read_text()
    (contracts / "painter.yaml").write_text(
        dev.replace("endpoint_id: fal-ai/flux-1/dev", "endpoint_id: acme/painter")
    )
    (suite / "pytest.ini").write_text(USER_INI)
    (suite / "test_user.py").write_text(USER_SUITE)
    for extra in ([], ["-n", "2"]):
        done = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, cwd=suite)
        assert "6 passed" in done.stdout, done.stdout


USER_INI = """\
[pytest]
fal_mock_profile = official
fal_mock_contracts = contracts
fal_mock_intermediary_urls = https://gateway.example.test/fal
fal_mock_queue_seconds = 0
fal_mock_run_seconds = 0
"""

# Every fixture, every marker option, the ini options above, next_output.
USER_SUITE = """\
import ssl

import fal_client
import httpx
import pytest

from mockserver.testing import FalMockFixture, FalServer

DEV = "fal-ai/flux-1/dev"


def test_fal_client_and_next_output(fal_mock: FalMockFixture) -> None:
    fal_mock.next_output(DEV, merge={"has_nsfw_concepts": [True]})
    assert fal_client.subscribe(DEV, arguments={"prompt": "x"})["has_nsfw_concepts"] == [True]
    fal_mock.assert_called(DEV, times=1)
    fal_mock.assert_nothing_unexpected()


@pytest.mark.fal_mock(profile="intermediary", key="user-key",
                      intermediary_urls=["https://api.example.test"])
def test_intermediary_marker(fal_mock: FalMockFixture) -> None:
    assert fal_mock.headers == {"Authorization": "Bearer user-key"}
    queued = httpx.post("https://api.example.test/acme/painter", json={"prompt": "p"},
                        headers=fal_mock.headers).json()
    assert queued["request_id"]


def test_ini_intermediary_and_contracts(fal_mock: FalMockFixture) -> None:
    queued = httpx.post("https://gateway.example.test/fal/acme/painter", json={"prompt": "p"},
                        headers=fal_mock.headers)
    assert queued.status_code == 200, queued.text


@pytest.mark.fal_mock(queue_seconds=5, run_seconds=5, contracts=[],
                      outcomes={DEV: "infra_error"})
def test_timing_and_outcomes_marker(fal_mock: FalMockFixture) -> None:
    handle = fal_client.submit(DEV, arguments={"prompt": "x"})
    assert isinstance(handle.status(), fal_client.Queued)
    fal_mock.advance(10)
    with pytest.raises(fal_client.client.FalClientHTTPError) as info:
        handle.get()
    assert info.value.status_code == 503


@pytest.mark.fal_mock(outcomes={DEV: {"merge": {"seed": 1}}})
def test_fal_server_takes_the_marker(fal_server: FalServer) -> None:
    queued = httpx.post(f"{fal_server.base_url}/{DEV}", json={"prompt": "x"},
                        headers=fal_server.headers).json()
    assert httpx.get(queued["response_url"], headers=fal_server.headers).json()["seed"] == 1


def test_fal_https_server(fal_https_server: FalServer) -> None:
    queued = httpx.post(f"{fal_https_server.base_url}/{DEV}", json={"prompt": "x"},
                        headers=fal_https_server.headers,
                        verify=ssl.create_default_context(cafile=fal_https_server.ca_file))
    assert queued.status_code == 200
"""
