"""Replicas on Redis (`serve --store redis://...`): what the shared store costs
per request, and what 1, 2 and 3 replicas serve together.

1. In process: the same app over the memory store and over a `RedisStore`
   (a real redis-server on 127.0.0.1): a status poll of a finished job, of a
   queued one, and a submit. Each Redis request pays a round trip to catch up
   with the log and one to record the request.
2. Over HTTP: N `mockserver serve --store` processes sharing one redis-server,
   the load generator's connections spread evenly over them, polling the
   status of one finished job; throughput as a ratio to one replica.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Any

REPLICAS_HEADING = "## Replicas on Redis"
_ROUNDS = 3


def _redis(directory: str, port: int) -> subprocess.Popen[bytes]:
    from benchmarks.load import start

    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port)]
    command += ["--dir", directory, "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return start([], port, process)


def in_process(url: str, seconds: float) -> dict[str, float]:
    """Requests per second of a status poll and a submit, memory vs Redis store."""
    import redis

    from benchmarks.run import SUBMIT_BODY, _asgi_rate
    from mockserver import FalMock, ManualClock, MockConfig, create_app
    from mockserver.redis_store import RedisStore

    def apps(shared: bool) -> dict[str, tuple[Any, str, str, bytes]]:
        def build(config: MockConfig, database: int) -> tuple[Any, str]:
            # Manual clocks both: the same work per request, whatever the time.
            # A database each: one app's submits are not the other's to replay.
            if shared:
                where = f"{url.rsplit('/', 1)[0]}/{database}"
                redis.Redis.from_url(where).flushdb()
                mock = FalMock(config, store=RedisStore(where, manual_clock=True))
            else:
                mock = FalMock(config, clock=ManualClock())
            app = create_app(mock)
            asyncio.run(_asgi_rate(app, "POST", "/fal-ai/flux-1/dev", SUBMIT_BODY, 0.02))
            request_id = mock.requests[-1].request_id
            return app, f"/fal-ai/flux-1/requests/{request_id}/status"

        done, done_path = build(MockConfig(instant=True), 1)
        queued, queued_path = build(MockConfig(), 2)  # the clock never moves: queued
        return {
            "status": (done, "GET", done_path, b""),
            "status queued": (queued, "GET", queued_path, b""),
            "submit": (done, "POST", "/fal-ai/flux-1/dev", SUBMIT_BODY),
        }

    cases = {
        **{f"memory {k}": v for k, v in apps(False).items()},
        **{f"redis {k}": v for k, v in apps(True).items()},
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(_ROUNDS):
        for name, (app, method, path, body) in cases.items():
            samples[name].append(
                asyncio.run(_asgi_rate(app, method, path, body, seconds / _ROUNDS))
            )
    return {name: statistics.median(values) for name, values in samples.items()}


def over_http(url: str, seconds: float, connections: int) -> dict[int, float]:
    """Status polls per second served by 1, 2 and 3 replicas together."""
    import httpx
    import redis

    from benchmarks.load import request, start, stop
    from tests.e2e.server import free_port

    rates: dict[int, float] = {}
    for count in (1, 2, 3):
        redis.Redis.from_url(url).flushdb()
        ports = [free_port() for _ in range(count)]
        command = [sys.executable, "-m", "mockserver", "serve", "--store", url, "--instant"]
        processes = [start([*command, "--port", str(port)], port) for port in ports]
        try:
            with httpx.Client(headers={"Authorization": "Key bench-key"}) as client:
                base = f"http://127.0.0.1:{ports[0]}"
                done = client.post(f"{base}/fal-ai/flux-1/dev", json={"prompt": "x"}).json()
            raw = request("GET", httpx.URL(done["status_url"]).raw_path.decode(), b"")
            per = max(connections // count, 1)

            rates[count] = statistics.median(
                asyncio.run(_together(ports, raw, seconds / _ROUNDS, per)) for _ in range(_ROUNDS)
            )
        finally:
            stop(processes)
    return rates


async def _together(ports: list[int], raw: bytes, seconds: float, connections: int) -> float:
    from benchmarks.load import http_run

    runs = [http_run(port, raw, seconds, connections) for port in ports]
    return sum(rate for rate, _ in await asyncio.gather(*runs))


def measure(seconds: float, connections: int) -> dict[str, Any]:
    """Both measurements, against a redis-server started (and stopped) here."""
    from tests.e2e.server import free_port

    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    port = free_port()
    server = _redis(directory, port)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        return {
            "in_process": in_process(url, seconds),
            "http": over_http(url, seconds, connections),
            "connections": connections,
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def report(measured: dict[str, Any], note: str = "") -> str:
    """The section as Markdown."""
    inproc: dict[str, float] = measured["in_process"]
    http: dict[int, float] = measured["http"]
    lines = [
        REPLICAS_HEADING,
        "",
        "In process (ASGI, no sockets): the same app over the memory store and over",
        "a Redis store (redis-server on 127.0.0.1). Requests per second.",
        "",
        "| request | memory store | Redis store | Redis/memory | goal |",
        "|---|---:|---:|---:|---:|",
    ]
    goals = {"status": ">= 0.5", "status queued": "", "submit": ""}
    for name, goal in goals.items():
        memory, shared = inproc[f"memory {name}"], inproc[f"redis {name}"]
        lines.append(
            f"| {name} | {memory:,.0f} | {shared:,.0f} | **{shared / memory:.2f}** | {goal} |"
        )
    one = http[1]
    lines += [
        "",
        "Over HTTP: N `mockserver serve --store redis://...` processes sharing one",
        f"redis-server, {measured['connections']} keep-alive connections spread over them,",
        "polling the status of one finished job (the machine's 2 cores also run Redis",
        "and the load generator).",
        "",
        "| replicas | status polls/s | vs 1 replica |",
        "|---:|---:|---:|",
        *(f"| {n} | {rate:,.0f} | **{rate / one:.2f}** |" for n, rate in sorted(http.items())),
    ]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"
