"""Webhooks: delivery on every ending, fal's body shapes, ED25519 signatures,
retries on the mock's clock, and the allow-list."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from mockserver import ManualClock, create_app
from mockserver.client import WebhookVerificationError, verify_webhook
from mockserver.mock import FalMock
from mockserver.outcomes import Outcome
from mockserver.webhooks import WebhookConfig, is_allowed, webhook_body
from tests.conftest import AUTH, DEV, MockFactory, path_of, submit
from tests.e2e.server import ServerPool, serving_app

HOOK = "http://127.0.0.1:9/hooks/fal"


class Receiver:
    """A webhook receiver in process: records what arrives, answers as scripted."""

    def __init__(self, *answers: int | type[httpx.TransportError]) -> None:
        self.answers = list(answers)
        self.received: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, type):
            raise answer("receiver trouble", request=request)
        return httpx.Response(answer, json={"ok": answer < 300})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@pytest.fixture
def client(mock: FalMock) -> Iterator[TestClient]:
    """The app without its lifespan, so without the background delivery worker:
    here a webhook goes out when the test calls `deliver_webhooks` (and the test reads
    what that call delivered), never when the worker's poll happens to come first."""
    test_client = TestClient(create_app(mock), headers=AUTH)
    yield test_client
    test_client.close()


@pytest.fixture
def receiver(mock: FalMock) -> Receiver:
    found = Receiver()
    mock.webhooks.route_to(found.transport)
    return found


def _submit_with_hook(client: TestClient, **payload: Any) -> str:
    payload.setdefault("prompt", "a cat")
    response = client.post(f"/{DEV}", params={"fal_webhook": HOOK}, json=payload)
    assert response.status_code == 200, response.text
    request_id: str = response.json()["request_id"]
    return request_id


def _jwks(client: TestClient) -> dict[str, Any]:
    response = client.get("/.well-known/jwks.json", headers={"Authorization": ""})
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def test_success_is_delivered_signed_when_the_request_ends(
    client: TestClient, mock: FalMock, clock: ManualClock, receiver: Receiver
) -> None:
    request_id = _submit_with_hook(client, num_images=2)
    assert mock.deliver_webhooks() == []  # nothing before the request ends
    clock.advance(20)
    [attempt] = mock.deliver_webhooks()
    assert attempt.delivered and attempt.attempt == 1
    [sent] = receiver.received
    assert str(sent.url) == HOOK and sent.method == "POST"
    body = sent.read()
    result = client.get(path_of(f"http://testserver/fal-ai/flux-1/requests/{request_id}")).json()
    data = verify_webhook(sent.headers, body, _jwks(client))
    assert data == {
        "request_id": request_id,
        "gateway_request_id": request_id,
        "status": "OK",
        "payload": result,
    }
    assert len(data["payload"]["images"]) == 2
    # Independently of the client: ED25519 over the four lines fal documents.
    [key] = _jwks(client)["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("OKP", "Ed25519", "EdDSA")
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=="))
    message = "\n".join(
        [
            sent.headers["x-fal-webhook-request-id"],
            sent.headers["x-fal-webhook-user-id"],
            sent.headers["x-fal-webhook-timestamp"],
            hashlib.sha256(body).hexdigest(),
        ]
    ).encode()
    public.verify(bytes.fromhex(sent.headers["x-fal-webhook-signature"]), message)
    assert mock.deliver_webhooks() == []  # delivered once, not again


@pytest.mark.parametrize(
    ("outcome", "code", "payload"),
    [
        (
            Outcome(kind="model_error", status_code=422, detail="content policy"),
            422,
            {"detail": "content policy"},
        ),
        (Outcome(kind="infra_error", status_code=503, detail="runner lost"), 503, None),
    ],
    ids=["model-error", "infrastructure-error"],
)
def test_failures_are_delivered_as_errors(
    client: TestClient,
    mock: FalMock,
    clock: ManualClock,
    receiver: Receiver,
    outcome: Outcome,
    code: int,
    payload: Any,
) -> None:
    mock.next_outcome(DEV, outcome)
    request_id = _submit_with_hook(client)
    clock.advance(20)
    mock.deliver_webhooks()
    data = verify_webhook(receiver.received[0].headers, receiver.received[0].read(), _jwks(client))
    assert data["status"] == "ERROR" and data["request_id"] == request_id
    assert data["error"] == f"Invalid status code: {code}"
    if payload is not None:
        assert data["payload"] == payload
    else:
        assert data["payload"]["detail"] == "runner lost"


def test_a_cancelled_request_is_delivered_as_an_error(
    client: TestClient, mock: FalMock, receiver: Receiver
) -> None:
    request_id = _submit_with_hook(client)
    assert client.put(f"/fal-ai/flux-1/requests/{request_id}/cancel").status_code == 202
    [attempt] = mock.deliver_webhooks()
    body = attempt.json_body()
    assert body["status"] == "ERROR" and body["error"] == "Invalid status code: 499"
    assert body["payload"] == {"detail": "Request was cancelled"}


def test_an_output_that_is_not_json_gives_a_payload_error() -> None:
    import json

    body = json.loads(webhook_body("r-1", output=b'{"timings": {"inference": NaN}}'))
    assert body["status"] == "OK" and body["payload"] is None
    assert "NaN" in body["payload_error"]
    assert json.loads(webhook_body("r-1", output=b'{"ok": 1}'))["payload"] == {"ok": 1}


# -- signatures that must be rejected --------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        ("body", "does not match any key"),
        ("signature", "does not match any key"),
        ("key", "does not match any key"),
        ("timestamp", "stale or replayed"),
    ],
)
def test_forgeries_fail_verification(
    client: TestClient, mock: FalMock, receiver: Receiver, tamper: Any, says: str
) -> None:
    body = webhook_body("req-1", output=b'{"images": []}')
    attempt = mock.webhooks.send(HOOK, body, request_id="req-1", user_id="u-1", tamper=tamper)
    assert attempt.forged == tamper
    [sent] = receiver.received
    with pytest.raises(WebhookVerificationError, match=says):
        verify_webhook(sent.headers, sent.read(), _jwks(client))


def test_verification_rejects_missing_headers_and_foreign_key_sets(
    client: TestClient, mock: FalMock, clock: ManualClock, receiver: Receiver
) -> None:
    _submit_with_hook(client)
    clock.advance(20)
    mock.deliver_webhooks()
    [sent] = receiver.received
    headers, body, jwks = dict(sent.headers), sent.read(), _jwks(client)
    verify_webhook(headers, body, jwks)  # genuine
    without = {k: v for k, v in headers.items() if k != "x-fal-webhook-signature"}
    with pytest.raises(WebhookVerificationError, match="missing header X-Fal-Webhook-Signature"):
        verify_webhook(without, body, jwks)
    with pytest.raises(WebhookVerificationError, match="no Ed25519 key"):
        verify_webhook(headers, body, {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]})
    with pytest.raises(WebhookVerificationError, match="not hex"):
        verify_webhook({**headers, "x-fal-webhook-signature": "zz"}, body, jwks)
    late = int(headers["x-fal-webhook-timestamp"]) + 301
    with pytest.raises(WebhookVerificationError, match="stale"):
        verify_webhook(headers, body, jwks, now=late)
    verify_webhook(headers, body, jwks, now=late, tolerance=400)


# -- retries ---------------------------------------------------------------------------


def test_failed_deliveries_are_retried_with_doubling_backoff(
    client: TestClient, mock: FalMock, clock: ManualClock
) -> None:
    flaky = Receiver(500, httpx.ReadTimeout, 503, 200)
    mock.webhooks.route_to(flaky.transport)
    _submit_with_hook(client)
    clock.advance(2)  # dev: queued 1 s, runs 1 s
    ended = clock.now()
    first = mock.deliver_webhooks()
    assert [(a.status_code, a.delivered) for a in first] == [(500, False)]
    clock.advance(6.9)
    assert mock.deliver_webhooks() == []  # the first retry waits 7 s
    clock.advance(0.1)
    [second] = mock.deliver_webhooks()
    assert second.status_code is None and "did not answer" in (second.error or "")
    clock.advance(14)
    [third] = mock.deliver_webhooks()
    assert third.status_code == 503 and third.attempt == 3
    clock.advance(28)
    [fourth] = mock.deliver_webhooks()
    assert fourth.delivered and fourth.attempt == 4
    assert [round(a.at - ended, 6) for a in mock.webhooks.attempts] == [0, 7, 21, 49]
    assert mock.webhooks.pending() == []
    # every attempt is signed afresh and carries the same body
    assert len({a.body for a in mock.webhooks.attempts}) == 1


def test_retries_stop_after_the_configured_count(
    make_mock: MockFactory, clock: ManualClock
) -> None:
    mock = make_mock(webhooks=WebhookConfig(retries=2, backoff=1.0), instant=True)
    down = Receiver(500, 500, 500, 500)
    mock.webhooks.route_to(down.transport)
    client = TestClient(create_app(mock), headers=AUTH)  # no lifespan: no background worker
    _submit_with_hook(client)
    for _ in range(5):
        mock.deliver_webhooks()
        clock.advance(10)
    listed = client.get("/_mock/webhooks").json()
    client.close()
    assert [a.attempt for a in mock.webhooks.attempts] == [1, 2, 3]
    assert listed["pending"] == [] and [a["attempt"] for a in listed["attempts"]] == [1, 2, 3]
    assert all(not a["delivered"] for a in listed["attempts"])


# -- where webhooks may go -------------------------------------------------------------


def test_the_allow_list() -> None:
    loopback = WebhookConfig().allow
    assert is_allowed("http://127.0.0.1:8080/hook", loopback)
    assert is_allowed("https://localhost/hook", loopback)
    assert is_allowed("http://[::1]:9000/x", loopback)
    assert not is_allowed("http://10.0.0.5/hook", loopback)
    assert not is_allowed("http://169.254.169.254/latest/meta-data", loopback)
    assert not is_allowed("http://localhost.evil.example/hook", loopback)
    assert not is_allowed("file:///etc/passwd", loopback)
    assert not is_allowed("http://user@/nohost", loopback)
    assert is_allowed("http://10.0.0.5/hook", ("10.0.0.0/8",))
    assert is_allowed("https://hooks.example.com/x", ("hooks.example.com",))
    with pytest.raises(ValueError, match="not a host or network"):
        WebhookConfig(allow=("bad entry/x",))


def test_a_host_off_the_allow_list_is_never_called(client: TestClient, mock: FalMock) -> None:
    response = client.post(
        f"/{DEV}", params={"fal_webhook": "http://metadata.internal/hook"}, json={"prompt": "x"}
    )
    request_id = response.json()["request_id"]
    client.put(f"/fal-ai/flux-1/requests/{request_id}/cancel")
    [attempt] = mock.deliver_webhooks()
    assert attempt.status_code is None and "allow-list" in (attempt.error or "")
    assert mock.webhooks.pending() == []  # refused for good, not retried


def test_a_webhook_url_must_be_http(client: TestClient) -> None:
    for bad in ("ftp://x/y", "not a url", "http://"):
        response = client.post(f"/{DEV}", params={"fal_webhook": bad}, json={"prompt": "x"})
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"] == ["query", "fal_webhook"]


def test_reset_forgets_deliveries(client: TestClient, mock: FalMock, receiver: Receiver) -> None:
    body = webhook_body("r", output=b"{}")
    mock.webhooks.send(HOOK, body, request_id="r", user_id="u", tamper="body")
    assert mock.webhooks.attempts
    assert client.post("/_mock/reset").status_code == 200
    assert mock.webhooks.attempts == []


# -- a real server delivering over loopback --------------------------------------------


@pytest.fixture
def loopback_receiver() -> Iterator[
    tuple[str, list[tuple[dict[str, str], bytes]], threading.Event]
]:
    got: list[tuple[dict[str, str], bytes]] = []
    arrived = threading.Event()

    async def hook(request: Request) -> Response:
        got.append((dict(request.headers), await request.body()))
        arrived.set()
        return JSONResponse({"ok": True})

    with serving_app(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        yield f"{base}/hook", got, arrived


@pytest.mark.e2e
def test_a_served_mock_delivers_in_the_background(
    mock_servers: ServerPool,
    loopback_receiver: tuple[str, list[tuple[dict[str, str], bytes]], threading.Event],
) -> None:
    url, got, arrived = loopback_receiver
    base = mock_servers.get("--instant")
    submitted = httpx.post(
        f"{base}/{DEV}", params={"fal_webhook": url}, json={"prompt": "x"}, headers=AUTH
    ).json()
    assert arrived.wait(10), "no webhook arrived"  # the receiver, not the mock, is awaited
    jwks = httpx.get(f"{base}/.well-known/jwks.json").json()
    listed = httpx.get(f"{base}/_mock/webhooks").json()
    headers, body = got[0]
    data = verify_webhook(headers, body, jwks)
    assert data["request_id"] == submitted["request_id"] and data["status"] == "OK"
    assert listed["attempts"][0]["delivered"] is True


def test_the_attempt_history_is_bounded(make_mock: MockFactory) -> None:
    mock = make_mock(webhooks=WebhookConfig(history=2))
    mock.webhooks.route_to(Receiver().transport)
    for request_id in ("a", "b", "c"):
        body = webhook_body(request_id, output=b"{}")
        mock.webhooks.send(HOOK, body, request_id=request_id, user_id="u", tamper="body")
    assert [a.request_id for a in mock.webhooks.attempts] == ["b", "c"]


def test_the_delivery_worker_leaves_the_queue_alone_without_webhooks(
    client: TestClient, mock: FalMock, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    real_sync = mock.engine.sync

    def counted_sync() -> None:
        syncs.append(1)
        real_sync()

    monkeypatch.setattr(mock.engine, "sync", counted_sync)
    submit(client)  # no webhook
    clock.advance(20)
    syncs.clear()
    assert not mock.webhooks_due()
    assert syncs == []  # nothing awaits a webhook: no replay of the queue
    _submit_with_hook(client)
    syncs.clear()
    clock.advance(20)
    assert mock.webhooks_due() and syncs  # now it must look


# -- concurrent delivery: a stalled receiver holds one sender ----------------------------


class _Server(ThreadingHTTPServer):
    # The default backlog (5) drops connections that a burst of concurrent
    # deliveries opens at once, and their retried SYNs arrive seconds later.
    request_queue_size = 128
    daemon_threads = True


class _StallingReceiver:
    """A receiver on loopback: POST /stall blocks until `release` is set (then
    answers `stall_status`), POST /ok answers 200 at once; both record their
    arrival (in the order they arrived)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.stall_status = 200
        self.arrived: list[str] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.changed:
                    receiver.arrived.append(self.path)
                    receiver.changed.notify_all()
                status = 200
                if self.path == "/stall":
                    receiver.release.wait(30)
                    status = receiver.stall_status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test's output stays clean

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, path: str, count: int) -> bool:
        """Block until `count` requests to `path` arrived (False after 30 s)."""
        with self.changed:
            return self.changed.wait_for(lambda: self.arrived.count(path) >= count, 30)


@pytest.fixture
def stalling_receiver() -> Iterator[_StallingReceiver]:
    receiver = _StallingReceiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()


def _enqueue(mock: FalMock, url: str, count: int) -> None:
    for index in range(count):
        request_id = f"{url.rsplit('/', 1)[-1]}-{index}"
        mock.webhooks.enqueue(request_id, "u", url, webhook_body(request_id, output=b"{}"))


def test_a_stalled_receiver_delays_no_other_webhook(
    make_mock: MockFactory, stalling_receiver: _StallingReceiver
) -> None:
    mock = make_mock()
    _enqueue(mock, f"{stalling_receiver.base}/stall", 1)  # first in line
    _enqueue(mock, f"{stalling_receiver.base}/ok", 30)
    futures = mock.webhooks.start_due()
    assert len(futures) == 31
    # Every other webhook arrives while the first receiver still has not answered.
    assert stalling_receiver.wait_for("/ok", 30), stalling_receiver.arrived
    assert not stalling_receiver.release.is_set()
    stalling_receiver.release.set()
    attempts = [future.result(timeout=30) for future in futures]
    assert all(attempt.delivered for attempt in attempts)
    assert len(mock.webhooks.attempts) == 31
    mock.webhooks.close()


def test_deliveries_in_flight_are_bounded(
    make_mock: MockFactory, stalling_receiver: _StallingReceiver
) -> None:
    mock = make_mock(webhooks=WebhookConfig(concurrency=2))
    _enqueue(mock, f"{stalling_receiver.base}/stall", 2)
    _enqueue(mock, f"{stalling_receiver.base}/ok", 3)
    futures = mock.webhooks.start_due()
    assert stalling_receiver.wait_for("/stall", 2)
    # Both senders are held by the stalled receiver: nothing else went out.
    assert stalling_receiver.arrived == ["/stall", "/stall"]
    stalling_receiver.release.set()
    assert all(future.result(timeout=30).delivered for future in futures)
    assert stalling_receiver.arrived.count("/ok") == 3
    mock.webhooks.close()


def test_deliver_due_waits_for_every_answer_in_due_order(
    make_mock: MockFactory, stalling_receiver: _StallingReceiver
) -> None:
    mock = make_mock(webhooks=WebhookConfig(retries=1, backoff=5))
    stalling_receiver.release.set()  # nothing stalls here
    _enqueue(mock, f"{stalling_receiver.base}/ok", 5)
    _enqueue(mock, "http://127.0.0.1:9/refused", 1)  # nobody listens: retried later
    made = mock.deliver_webhooks()
    assert [a.request_id for a in made] == [*(f"ok-{i}" for i in range(5)), "refused-0"]
    assert [a.delivered for a in made] == [True] * 5 + [False]
    assert [p["request_id"] for p in mock.webhooks.pending()] == ["refused-0"]
    mock.webhooks.close()


def test_a_reset_during_a_delivery_reschedules_nothing(
    make_mock: MockFactory, stalling_receiver: _StallingReceiver
) -> None:
    mock = make_mock(webhooks=WebhookConfig(timeout=30))
    stalling_receiver.stall_status = 503  # a failure: normally retried
    _enqueue(mock, f"{stalling_receiver.base}/stall", 1)
    [future] = mock.webhooks.start_due()
    assert stalling_receiver.wait_for("/stall", 1)
    mock.webhooks.reset()
    stalling_receiver.release.set()
    assert future.result(timeout=60).status_code == 503
    assert mock.webhooks.pending() == []  # the reset forgot it: no retry comes back
    mock.webhooks.close()
