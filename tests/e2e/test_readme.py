"""The README's examples, run as written against a real server."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import ServerPool

pytestmark = pytest.mark.e2e
README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_BASE = "http://127.0.0.1:8000"


def readme_block(name: str) -> str:
    """The fenced block right after ``<!-- readme-test: name -->``."""
    match = re.search(rf"<!-- readme-test: {name} -->\n```\w+\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no block marked {name!r}"
    return match.group(1)


def run_shell(block: str, base: str, cwd: Path) -> str:
    assert DEFAULT_BASE in block
    script = "set -euo pipefail\n" + block.replace(DEFAULT_BASE, base)
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_official_curl_flow(mock_servers: ServerPool, tmp_path: Path) -> None:
    base = mock_servers.get("--instant")
    output = run_shell(readme_block("official"), base, tmp_path)
    submitted = json.loads((tmp_path / "submit.json").read_text())
    result = json.loads((tmp_path / "result.json").read_text())
    assert submitted["status"] == "IN_QUEUE"
    assert [(i["width"], i["height"]) for i in result["images"]] == [(1024, 1024)] * 2
    assert (tmp_path / "image.jpeg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert '"ALREADY_COMPLETED"' in output
    assert '"loc":["body","num_images"]' in output
    assert 'data: {"status":"COMPLETED"' in output


def test_surface_curl_flow(mock_servers: ServerPool, tmp_path: Path) -> None:
    output = run_shell(readme_block("surface"), mock_servers.get("--instant"), tmp_path)
    events = [json.loads(x[6:]) for x in output.splitlines() if x.startswith("data: ")]
    assert [e.get("progress") for e in events[:3]] == [0.25, 0.5, 0.75]
    assert events[3]["prompt"] == "a fox"
    assert "hello, fal\n" in output
    token = next(line for line in output.splitlines() if line.startswith('"'))
    assert len(json.loads(token)) > 20
    assert '"status":"IN_QUEUE"' in output


def test_intermediary_curl_flow(mock_servers: ServerPool, tmp_path: Path) -> None:
    base = mock_servers.get("--profile", "intermediary", "--instant")
    output = run_shell(readme_block("intermediary"), base, tmp_path)
    assert '"response_url":"https://queue.fal.run/fal-ai/flux-1/requests/' in output
    assert '"images":[' in output


def test_control_examples(mock_servers: ServerPool, tmp_path: Path) -> None:
    base = mock_servers.get("--instant")
    output = run_shell(readme_block("control"), base, tmp_path)
    assert '"kind":"model_error"' in output and '"status_code":429' in output


def test_python_example() -> None:
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        exec(compile(readme_block("python"), str(README), "exec"), {"__name__": "readme"})
    assert captured.getvalue().split("\n")[:2] == ["1024 768", "503"]


def test_client_example(mock_servers: ServerPool, tmp_path: Path) -> None:
    block = readme_block("client")
    base = mock_servers.get("--queue-seconds", "0.1", "--run-seconds", "0.2")
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        exec(
            compile(block.replace(DEFAULT_BASE, base), str(README), "exec"),
            {"__name__": "readme"},
        )
    lines = captured.getvalue().splitlines()
    assert lines[0] == "Queued" and "InProgress" in lines and "Completed" in lines
    assert "512 512" in lines
    assert any(line.startswith("['") and line.endswith(".jpeg']") for line in lines)
    assert lines[-1] == "422 ['num_images', 'prompt']"


def test_check_example(mock_servers: ServerPool, tmp_path: Path) -> None:
    keys = {"MOCK_KEYS": "key-one,key-two"}
    args = ("--profile", "intermediary", "--keys-env", "MOCK_KEYS")
    base = mock_servers.get(*args, "--queue-seconds", "0.2", "--run-seconds", "0.2", env=keys)
    # the block runs as written, with this checkout's `mockserver` first on PATH
    block = readme_block("check")
    bin_dir = Path(sys.executable).parent
    output = run_shell(f'export PATH="{bin_dir}:$PATH"\n{block}', base, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "CONFORMS" in output and "0 fail" in output
    # the README's sample of the terminal output is what the terminal prints
    # (request ids, counts and seconds aside)
    sample = readme_block("check-output").replace(DEFAULT_BASE, base)
    for line in sample.splitlines():
        if line.startswith(("NOTE ", "SKIP ", "wrote ")):
            assert line in output.splitlines(), line
        elif line.startswith("CONFORMS"):
            [verdict] = [x for x in output.splitlines() if x.startswith("CONFORMS")]
            assert _digits(verdict) == _digits(line)
        else:  # evidence, cut at a fixed width: the port's length moves the cut
            stem = re.sub(_ID, "ID", line.rstrip("…"))[:-8]
            assert any(re.sub(_ID, "ID", x).startswith(stem) for x in output.splitlines()), line
    assert "**url-origin**: returned URLs are on https://queue.fal.run" in report
    assert "key-one" not in output + report and "key-two" not in output + report


_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _digits(text: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "N", text)


def test_record_example(mock_servers: ServerPool, tmp_path: Path) -> None:
    from mockserver import FalMock, ManualClock, MockConfig
    from tests.e2e.server import free_port

    base = mock_servers.get("--instant")
    port = str(free_port())
    block = readme_block("record").replace("8001", port)
    bin_dir = Path(sys.executable).parent
    output = run_shell(f'export PATH="{bin_dir}:$PATH"\n{block}', base, tmp_path)
    assert "1 contract file(s) checked: 0 problem(s)" in output
    out = tmp_path / "my-contracts"
    recorded = out / "models/fal-ai/flux-1/schnell.yaml"
    assert recorded.is_file() and list((out / "models/fal-ai/flux-1/schnell.media").iterdir())
    mock = FalMock(MockConfig(contracts=(out,), instant=True), clock=ManualClock())
    model = mock.catalog.get("fal-ai/flux-1/schnell")
    assert model is not None and model.examples[-1]["input"] == {"prompt": "a fox", "seed": 42}
