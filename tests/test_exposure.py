"""A non-loopback bind needs a control token or an explicit --allow-remote-control.

Nothing here binds a non-loopback address: the decision, the CLI's refusal and
its start-up banner (uvicorn.run replaced), and the token check in process.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.cli import main
from mockserver.exposure import (
    ControlAccess,
    ExposureRefused,
    decide,
    is_loopback,
    proxy_adds_key,
)
from tests.conftest import AUTH, DEV

TOKEN = "control-token-5f4e3d2c1b"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("example.internal", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_decision() -> None:
    assert decide("127.0.0.1", None, False) == ControlAccess()
    with pytest.raises(ExposureRefused, match="--control-token"):
        decide("0.0.0.0", None, False)
    with pytest.raises(ExposureRefused):
        decide("0.0.0.0", "   ", False)  # a blank token is no token
    assert decide("0.0.0.0", TOKEN, False) == ControlAccess(token=TOKEN, remote=True)
    assert decide("0.0.0.0", None, True) == ControlAccess(remote=True)
    assert TOKEN not in repr(decide("0.0.0.0", TOKEN, False))


def _serve(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, dict[str, Any]]:
    """Run `mockserver serve` up to the point of serving; nothing binds the asked host."""
    import socket

    from mockserver import serving

    called: dict[str, Any] = {}

    def bind(host: str, port: int) -> socket.socket:
        called["host"] = host
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # loopback, whatever --host said
        return sock

    def run(app: Any, sock: socket.socket, *, announce: Any, **config: Any) -> None:
        called["app"] = app
        announce()
        sock.close()

    monkeypatch.setattr(serving, "bind", bind)
    monkeypatch.setattr(serving, "run", run)
    return main(["serve", *argv]), called


def test_serve_refuses_an_open_control_api_on_the_network(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MOCKSERVER_CONTROL_TOKEN", raising=False)
    code, called = _serve(monkeypatch, "--host", "0.0.0.0")
    assert code == 2 and called == {}
    err = capsys.readouterr().err
    assert "--control-token" in err and "--allow-remote-control" in err


@pytest.mark.parametrize(
    ("argv", "env", "said"),
    [
        (["--host", "0.0.0.0", "--control-token", TOKEN], None, "needs 'Authorization: Bearer"),
        (["--host", "0.0.0.0"], TOKEN, "needs 'Authorization: Bearer"),
        (["--host", "0.0.0.0", "--allow-remote-control"], None, "OPEN to the network"),
        ([], None, "this machine only"),
    ],
)
def test_serve_says_how_the_control_api_is_reachable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: str | None,
    said: str,
) -> None:
    if env is None:
        monkeypatch.delenv("MOCKSERVER_CONTROL_TOKEN", raising=False)
    else:
        monkeypatch.setenv("MOCKSERVER_CONTROL_TOKEN", env)
    code, called = _serve(monkeypatch, *argv)
    assert code == 0 and called["host"] == (argv[1] if argv else "127.0.0.1")
    out = capsys.readouterr().out
    assert said in out and TOKEN not in out
    with TestClient(called["app"]) as client:
        needs_token = "Bearer" in said
        assert (client.get("/_mock/health").status_code == 401) is needs_token


def test_the_token_guards_every_control_route_and_nothing_else() -> None:
    mock = FalMock(MockConfig(control=ControlAccess(token=TOKEN, remote=True)), clock=ManualClock())
    with TestClient(create_app(mock)) as client:
        for method, path in [
            ("GET", "/_mock/health"),
            ("POST", "/_mock/reset"),
            ("POST", "/_mock/clock/advance"),
            ("GET", "/_mock/requests"),
        ]:
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": TOKEN},
                {"Authorization": f"Key {TOKEN}"},
            ):
                refused = client.request(method, path, headers=headers, json={"seconds": 1})
                assert refused.status_code == 401, (path, headers)
                assert "control token" in refused.json()["detail"]
                assert refused.headers["www-authenticate"] == "Bearer"
        assert mock.clock.now() == ManualClock().now()  # nothing moved
        allowed = client.get("/_mock/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200
        # The protocol still takes fal keys, not the control token.
        assert client.post(f"/{DEV}", json={"prompt": "x"}, headers=AUTH).status_code == 200


def test_the_proxy_route_adds_a_key_on_loopback_or_when_asked() -> None:
    assert proxy_adds_key("127.0.0.1", False) and proxy_adds_key("localhost", False)
    assert not proxy_adds_key("0.0.0.0", False) and not proxy_adds_key("192.168.1.20", False)
    assert proxy_adds_key("0.0.0.0", True)


@pytest.mark.parametrize(
    ("argv", "adds", "said"),
    [
        ([], True, None),
        (["--host", "0.0.0.0", "--allow-remote-control"], False, "proxy route adds no key"),
        (
            ["--host", "0.0.0.0", "--allow-remote-control", "--proxy-adds-key"],
            True,
            "proxy route ADDS A KEY",
        ),
    ],
)
def test_serve_decides_and_says_whether_the_proxy_route_adds_a_key(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    adds: bool,
    said: str | None,
) -> None:
    monkeypatch.delenv("MOCKSERVER_CONTROL_TOKEN", raising=False)
    monkeypatch.setenv("PROXY_TEST_KEYS", "the-only-key")
    code, called = _serve(monkeypatch, "--keys-env", "PROXY_TEST_KEYS", *argv)
    assert code == 0
    out = capsys.readouterr().out
    assert (said in out) if said else ("proxy route" not in out)
    with TestClient(called["app"]) as client:
        keyless = client.post(
            "/api/fal/proxy",
            json={"prompt": "x"},
            headers={"x-fal-target-url": f"https://queue.fal.run/{DEV}"},
        )
    assert keyless.status_code == (200 if adds else 401), keyless.text
    assert "the-only-key" not in out + keyless.text


def test_record_refuses_a_network_bind_unless_told(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    import socket

    from mockserver import serving

    bound: list[str] = []

    def bind(host: str, port: int) -> socket.socket:
        bound.append(host)
        raise serving.CannotListen("not binding in this test")

    monkeypatch.setattr(serving, "bind", bind)
    argv = ["record", "--upstream", "http://127.0.0.1:9", "--out", str(tmp_path / "out")]
    assert main([*argv, "--host", "0.0.0.0"]) == 2 and bound == []
    err = capsys.readouterr().err
    assert "--allow-remote" in err and "127.0.0.1:9" in err
    assert not (tmp_path / "out").exists()  # refused before anything is written
    # Told, it goes on to bind (where this test stops it).
    assert main([*argv, "--host", "0.0.0.0", "--allow-remote"]) == 1 and bound == ["0.0.0.0"]
    assert main([*argv, "--host", "localhost"]) == 1 and bound[-1] == "localhost"
