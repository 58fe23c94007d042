"""Replicas as processes (`mockserver serve --store redis://...`): one killed
mid-run loses nothing, and killing every replica and Redis itself, then
starting them again, keeps every job (Redis's append-only file)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.replicas.servers import RedisServer, Replica

pytestmark = pytest.mark.e2e

DEV = "fal-ai/flux/dev"
KEY = {"Authorization": "Key durable-key"}
# One public URL, as behind a load balancer: answers name it, not each replica.
ARGS = (
    "--public-url",
    "http://fal.example",
    "--clock",
    "manual",
    "--queue-seconds",
    "1",
    "--run-seconds",
    "2",
    "--runners",
    "1",
)


def _start(url: str, count: int, into: list[Replica]) -> None:
    # Listed before they start: the fixture stops whatever did start.
    into.extend(Replica(url, *ARGS) for _ in range(count))
    for replica in into:
        replica.start()


@pytest.fixture
def replicas(redis_url: str) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for replica in started:
        replica.kill()


def _snapshot(base_url: str, ids: list[str]) -> list[tuple[int, bytes]]:
    """Every job's status answer and result bytes, as a client reads them."""
    with httpx.Client(base_url=base_url, headers=KEY) as client:
        seen = []
        for request_id in ids:
            status = client.get(f"/fal-ai/flux/requests/{request_id}/status")
            result = client.get(f"/fal-ai/flux/requests/{request_id}")
            seen.append((status.status_code, status.content + b"|" + result.content))
        return seen


def test_a_killed_replica_loses_nothing_and_a_full_restart_keeps_every_job(
    redis_server: RedisServer, redis_url: str, replicas: list[Replica]
) -> None:
    _start(redis_url, 3, replicas)
    clients = [httpx.Client(base_url=r.base_url, headers=KEY) for r in replicas]
    ids = [
        clients[i % 3].post(f"/{DEV}", json={"prompt": f"cat {i}"}).json()["request_id"]
        for i in range(6)
    ]
    clients[0].post("/_mock/clock/advance", json={"seconds": 5})  # two done, one running

    replicas[1].kill()  # mid-run: jobs it took are in Redis, not in it
    for client in (clients[0], clients[2]):
        statuses = [client.get(f"/fal-ai/flux/requests/{i}/status").json() for i in ids]
        assert [s["status"] for s in statuses] == ["COMPLETED"] * 2 + ["IN_PROGRESS"] + [
            "IN_QUEUE"
        ] * 3
        assert [s.get("queue_position") for s in statuses[3:]] == [0, 1, 2]
    clients[2].post("/_mock/clock/advance", json={"seconds": 20})
    before = _snapshot(replicas[0].base_url, ids)
    assert [code for code, _ in before] == [200] * 6
    for client in clients:
        client.close()

    for replica in replicas:
        replica.kill()
    replicas.clear()
    redis_server.stop()
    redis_server.start()  # from its append-only file
    _start(redis_url, 2, replicas)
    for replica in replicas:
        assert _snapshot(replica.base_url, ids) == before
    with httpx.Client(base_url=replicas[1].base_url) as client:
        assert client.get("/_mock/clock").json()["timestamp"] > 1767225600  # time kept too
