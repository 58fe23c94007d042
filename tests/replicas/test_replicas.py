"""Three replicas of the mock (each its own `FalMock`, in process) sharing one
real Redis: whichever replica a request reaches, it is answered as by one process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from mockserver import FalMock, MockConfig, Outcome, create_app
from mockserver.client import verify_webhook
from mockserver.queue import Retention
from mockserver.redis_store import RedisStore, redact_store_url
from mockserver.store import StoreError
from mockserver.transport import SyncAppTransport

DEV = "fal-ai/flux/dev"
KEY = {"Authorization": "Key key-one"}
OTHER_KEY = {"Authorization": "Key key-two"}
HOOK = "https://hooks.example.com/fal"


@dataclass
class Replica:
    """One replica: its mock and an HTTP client into its app."""

    mock: FalMock
    http: httpx.Client

    def status(self, request_id: str, headers: dict[str, str] = KEY) -> httpx.Response:
        return self.http.get(f"/fal-ai/flux/requests/{request_id}/status", headers=headers)


def _replicas(url: str, count: int = 3, **config: object) -> list[Replica]:
    replicas = []
    for _ in range(count):
        mock = FalMock(MockConfig(**config), store=RedisStore(url, manual_clock=True))  # type: ignore[arg-type]
        transport = SyncAppTransport(create_app(mock))
        replicas.append(Replica(mock, httpx.Client(transport=transport, base_url="http://mock")))
    return replicas


@pytest.fixture
def replicas(redis_url: str) -> Iterator[list[Replica]]:
    found = _replicas(
        redis_url, runners=1, queue_seconds=0.0, run_seconds=5.0, retention=Retention(100.0, 100.0)
    )
    yield found
    for replica in found:
        replica.http.close()
        replica.mock.store.close()


def _submit(replica: Replica, **headers: str) -> str:
    response = replica.http.post(f"/{DEV}", json={"prompt": "a cat"}, headers={**KEY, **headers})
    assert response.status_code == 200, response.text
    request_id: str = response.json()["request_id"]
    return request_id


def test_every_replica_answers_for_every_job_in_fifo_order(replicas: list[Replica]) -> None:
    ids = [_submit(replicas[i % 3]) for i in range(4)]
    for replica in replicas:
        positions = [replica.status(i).json().get("queue_position") for i in ids]
        assert positions == [None, 0, 1, 2]  # the first one runs: one runner
        assert [replica.status(i).json()["status"] for i in ids] == ["IN_PROGRESS"] + [
            "IN_QUEUE"
        ] * 3
    replicas[1].mock.advance(60)  # the manual clock is one clock for all of them
    results = [r.http.get(f"/fal-ai/flux/requests/{ids[0]}", headers=KEY) for r in replicas]
    assert len({r.content for r in results}) == 1  # the same bytes, built by each
    image = results[0].json()["images"][0]["url"].removeprefix("http://mock")
    downloads = {r.http.get(image).content for r in replicas}
    assert len(downloads) == 1 and next(iter(downloads)).startswith(b"\xff\xd8")
    # another key's read is a 404 on every replica
    assert {r.status(ids[0], OTHER_KEY).status_code for r in replicas} == {404}


def test_a_cancel_on_one_replica_moves_the_queue_on_all(replicas: list[Replica]) -> None:
    first, second, third = (_submit(r) for r in replicas)
    cancelled = replicas[2].http.put(f"/fal-ai/flux/requests/{second}/cancel", headers=KEY)
    assert cancelled.status_code == 202
    for replica in replicas:
        assert replica.status(third).json()["queue_position"] == 0
        assert replica.status(first).json()["status"] == "IN_PROGRESS"
    replicas[0].mock.advance(60)
    result = replicas[1].http.get(f"/fal-ai/flux/requests/{second}", headers=KEY)
    assert result.status_code == 499


def test_a_low_priority_position_never_grows_whichever_replica_answers(
    replicas: list[Replica],
) -> None:
    _submit(replicas[0])  # runs
    low = _submit(replicas[1], **{"X-Fal-Queue-Priority": "low"})
    assert replicas[2].status(low).json()["queue_position"] == 0
    _submit(replicas[0])  # a normal job now goes ahead of it
    # a replica that never reported this job still reports no more than was seen
    assert replicas[1].status(low).json()["queue_position"] == 0
    assert replicas[0].status(low).json()["queue_position"] == 0


def test_results_are_kept_for_their_retention_then_gone_everywhere(
    replicas: list[Replica],
) -> None:
    request_id = _submit(replicas[0])
    replicas[1].mock.advance(10)
    assert {r.status(request_id).json()["status"] for r in replicas} == {"COMPLETED"}
    replicas[2].mock.advance(100)
    assert {r.status(request_id).status_code for r in replicas} == {404}


def test_scripted_outcomes_and_faults_are_used_once_across_replicas(
    replicas: list[Replica],
) -> None:
    replicas[0].mock.next_outcome(DEV, Outcome.model_error(detail="scripted"))
    failed = _submit(replicas[1])
    succeeded = _submit(replicas[2])
    replicas[0].mock.advance(60)
    assert replicas[2].http.get(f"/fal-ai/flux/requests/{failed}", headers=KEY).status_code == 422
    assert replicas[0].http.get(f"/fal-ai/flux/requests/{succeeded}", headers=KEY).is_success

    replicas[0].mock.add_fault(status_code=503, action="status")
    codes = [r.status(succeeded).status_code for r in replicas]
    assert sorted(codes) == [200, 200, 503]  # one request got it, whichever replica
    assert replicas[2].mock.faults.pending() == []


def test_requests_uploads_and_reset_are_shared(replicas: list[Replica]) -> None:
    request_id = _submit(replicas[0])
    replicas[1].status(request_id)
    seen = replicas[2].mock.requests
    assert [(r.action, r.request_id) for r in seen] == [
        ("submit", request_id),
        ("status", request_id),
    ]
    assert "key-one" not in json.dumps([r.to_json() for r in seen])

    token = replicas[0].http.post("/storage/auth/token", json={}, headers=KEY).json()
    uploaded = replicas[1].http.post(
        "/files/upload",
        content=b"hello bytes",
        headers={"Authorization": f"{token['token_type']} {token['token']}"},
    )
    assert uploaded.status_code == 200, uploaded.text
    path = uploaded.json()["access_url"].removeprefix("http://mock")
    assert replicas[2].http.get(path).content == b"hello bytes"

    replicas[2].mock.reset()
    assert replicas[0].status(request_id).status_code == 404
    assert replicas[1].http.get(path).status_code == 404
    assert [r.action for r in replicas[0].mock.requests] == ["status"]


def test_a_webhook_is_delivered_once_and_verifies_with_any_replicas_keys(
    replicas: list[Replica],
) -> None:
    received: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    for replica in replicas:
        replica.mock.webhooks.route_to(httpx.MockTransport(receive))
    response = replicas[0].http.post(
        f"/{DEV}", params={"fal_webhook": HOOK}, json={"prompt": "a cat"}, headers=KEY
    )
    request_id = response.json()["request_id"]
    replicas[1].mock.advance(60)  # delivers what is due on that replica
    for replica in replicas:
        replica.mock.refresh()
        replica.mock.deliver_webhooks()
    assert len(received) == 1
    jwks = replicas[2].http.get("/.well-known/jwks.json").json()
    data = verify_webhook(received[0].headers, received[0].read(), jwks)
    assert data["request_id"] == request_id and data["status"] == "OK"


def test_real_clock_replicas_share_one_timeline(redis_url: str) -> None:
    found = []
    for _ in range(2):
        store = RedisStore(redis_url)
        mock = FalMock(MockConfig(instant=True), store=store)
        found.append(
            httpx.Client(transport=SyncAppTransport(create_app(mock)), base_url="http://m")
        )
    submitted = found[0].post(f"/{DEV}", json={"prompt": "a cat"}, headers=KEY).json()
    status = (
        found[1].get(f"/fal-ai/flux/requests/{submitted['request_id']}/status", headers=KEY).json()
    )
    assert status["status"] == "COMPLETED"
    for client in found:
        client.close()


def test_clock_kinds_cannot_be_mixed_on_one_redis(redis_url: str) -> None:
    RedisStore(redis_url, manual_clock=True).close()
    with pytest.raises(StoreError, match="run a manual clock: start this one with --clock manual"):
        RedisStore(redis_url)


def test_a_bad_or_unreachable_store_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match=r"--store takes redis://HOST:PORT/DB"):
        RedisStore("http://localhost:6379")
    with pytest.raises(StoreError) as caught:
        RedisStore("redis://user:hunter2@127.0.0.1:1/0")
    assert "cannot use Redis at redis://***@127.0.0.1:1/0" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert redact_store_url("redis://:pw@h:1/2") == "redis://***@h:1/2"
