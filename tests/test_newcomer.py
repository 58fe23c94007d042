"""What a newcomer meets on the command line and at the server's door."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mockserver import FalMock, MockConfig, create_app, serving
from mockserver.cli import main
from mockserver.transport import AppTransport
from tests.e2e.server import free_port

WIDE = {"COLUMNS": "200"}


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in WIDE.items():
        monkeypatch.setenv(name, value)


def test_contracts_list_shows_bracketed_titles_as_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["contracts", "list"]) == 0
    out = capsys.readouterr().out
    assert "FLUX.1 [dev] image to image" in out and "FLUX.1 [schnell]" in out


def test_validate_counts_problems_and_prints_brackets_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text("endpoint_id: fal-ai/x\ntitle: [dev] x\n")
    (tmp_path / "b.yaml").write_text("endpoint_id: fal-ai/y\ntitle: ['FLUX.1 [dev]']\n")
    assert main(["contracts", "validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "title: ['FLUX.1 [dev]'] is not of type 'string'" in out  # brackets kept
    problems = [line for line in out.splitlines() if line.startswith("✗")]
    assert len(problems) == 6  # one not-YAML file, five schema problems in the other
    assert (
        out.splitlines()[-1] == "2 contract file(s) checked: 6 problem(s) (2 file(s) with problems)"
    )


def test_validate_fails_an_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["contracts", "validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"✗ {tmp_path}: no contract files" in out


def test_a_file_given_as_contracts_is_called_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contract = tmp_path / "mine.yaml"
    contract.write_text("endpoint_id: fal-ai/x\n")
    assert main(["contracts", "list", str(contract)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mockserver contracts list: error: {contract}: is a file;")
    assert f"directory that holds it ({tmp_path})" in err


def test_serve_warns_about_zero_models_and_empty_directories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    announced: list[str] = []

    def fake_run(app: object, sock: socket.socket, *, announce: object, **config: object) -> None:
        announce()  # type: ignore[operator]
        announced.append("yes")
        sock.close()

    monkeypatch.setattr(serving, "run", fake_run)
    port = free_port()
    code = main(
        ["serve", "--port", str(port), "--contracts", str(tmp_path), "--no-builtin-contracts"]
    )
    captured = capsys.readouterr()
    assert code == 0 and announced
    assert f"mockserver serve: warning: {tmp_path} holds no contract files" in captured.err
    assert "mockserver serve: warning: serving 0 models" in captured.err
    assert f"0 models (0 from {tmp_path})" in captured.out


def test_serve_says_how_many_models_a_directory_brought_and_why_its_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        serving, "run", lambda app, sock, *, announce, **config: (announce(), sock.close())
    )
    source = Path("contracts/models/fal-ai/flux-1/schnell.yaml").read_text()
    recorded = source + "recorded: {auth_scheme: Bearer, url_style: queue.fal.run}\n"
    (tmp_path / "schnell.yaml").write_text(recorded)
    assert main(["serve", "--port", str(free_port()), "--contracts", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"(1 from {tmp_path}, the rest shipped)" in out
    assert "(intermediary profile: what the recordings in --contracts observed" in out
    assert main(["serve", "--port", str(free_port())]) == 0
    assert "(official profile: the default, --profile to change;" in capsys.readouterr().out


def test_serve_on_a_busy_port_says_so_in_one_line_and_no_banner(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["serve", "--port", str(port)])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"mockserver serve: error: cannot listen on 127.0.0.1:{port}:")
    assert f"make serve PORT={port + 1}" in captured.err


def test_record_prints_its_summary_when_killed(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "mockserver", "record", "--upstream", "http://127.0.0.1:9"]
    command += ["--out", str(tmp_path / "rec"), "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **WIDE},
    )
    deadline = time.monotonic() + 30
    while True:  # a process starting up: the one wait there is
        try:
            httpx.get(f"http://127.0.0.1:{port}/_record/status", timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # what the README's `kill` sends
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "0 contract file(s) written: none" in out
    assert out.index("recording") < out.index("written")


def _get(method: str, path: str) -> httpx.Response:
    app = create_app(FalMock(MockConfig(instant=True)))

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=AppTransport(app), base_url="http://t") as client:
            return await client.request(method, path, headers={"Authorization": "Key k"})

    return asyncio.run(go())


def test_the_root_points_to_health_the_api_and_the_readme() -> None:
    answer = _get("GET", "/")
    detail = answer.json()["detail"]
    assert answer.status_code == 404
    assert "/_mock/health" in detail and "/openapi.json" in detail and "README" in detail


def test_a_request_url_with_the_full_endpoint_id_says_to_use_owner_alias() -> None:
    request_id = "0d8b8f8e-0000-4000-8000-000000000000"
    answer = _get("GET", f"/fal-ai/flux-1/dev/requests/{request_id}/status")
    assert answer.status_code == 404
    assert answer.json()["detail"] == (
        "Not Found: request URLs use only the owner/alias of the endpoint id, not the full id:"
        f" /fal-ai/flux-1/requests/{request_id}/status"
    )
