"""The built wheel, installed into a fresh virtualenv, serves a separate project.

This is how users get the plugin: `pip install fal-queue-harness` in their own
environment. The contracts must be inside the wheel, and the sample project's
tests (examples/sample_app) must pass with nothing else from this checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_wheel_in_a_fresh_venv_runs_the_sample_project(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, ROOT)
    [wheel] = wheels.glob("fal_queue_harness-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mockserver/_contracts/models/fal-ai/flux-1/dev.yaml" in names
    assert "mockserver/_contracts/media/sample-video.mp4" in names
    assert "mockserver/_contracts/protocol/definitions.yaml" in names

    # A venv without its own pip, filled by this one's (`pip --python`): bootstrapping
    # pip into every fresh venv costs more than the rest of the test.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python)
    _run(*pip, "install", "--quiet", str(wheel), "pytest", "fal-client")

    project = tmp_path / "sample_app"
    shutil.copytree(ROOT / "examples" / "sample_app", project)
    done = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert "3 passed" in done.stdout
    # and the installed command serves the shipped contracts
    listing = _run(venv / "bin" / "mockserver", "contracts", "list")
    assert "fal-ai/flux-1/dev" in listing.stdout
