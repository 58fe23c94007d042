"""`make bench`: throughput of the mock next to bare Starlette, and memory per job.

Three measurements, all on this machine, in one run:

1. In process: the ASGI app called directly (no sockets), so the number is the
   app's own cost per request: the mock's status poll and submit against a
   bare Starlette endpoint returning a body of the same shape.
2. Over HTTP: each app served by uvicorn (one process, httptools, no access
   log) on 127.0.0.1, loaded by a minimal keep-alive client in this process.
   Both share the machine's two cores with the load generator, so absolute
   numbers are low; the ratio is the point.
3. Memory: tracemalloc's view of 100k completed jobs held by the mock.
4. Where cost grows with the work (`benchmarks/scale.py`): 1,000 idle status
   streams, 100k jobs expiring at once, 100 webhooks behind a stalled receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import bare, plugin, replicas, scale
from benchmarks.load import http_run, request, start, stop
from mockserver import FalMock, ManualClock, MockConfig, create_app
from tests.e2e.server import free_port

AUTH = b"Key bench-key"
SUBMIT_BODY = json.dumps({"prompt": "a benchmark cat", "seed": 1}).encode()
ROUNDS = 5
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


# -- in process ---------------------------------------------------------------


def _scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", AUTH)]
    if body:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }


async def _asgi_rate(app: ASGIApp, method: str, path: str, body: bytes, seconds: float) -> float:
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            await app(_scope(method, path, body), receive, send)
        count += 200
    elapsed = time.perf_counter() - start
    assert set(statuses) <= {200, 202}, f"unexpected statuses {set(statuses)}"
    return count / elapsed


def in_process(seconds: float) -> dict[str, float]:
    """Requests per second of each app called directly."""
    mock = FalMock(MockConfig(instant=True, request_log_size=1000), clock=ManualClock())
    app = create_app(mock)
    # submit through HTTP, so the job belongs to the benchmark's key
    asyncio.run(_asgi_rate(app, "POST", "/fal-ai/flux-1/dev", SUBMIT_BODY, 0.05))
    request_id = mock.requests[-1].request_id
    status_path = f"/fal-ai/flux-1/requests/{request_id}/status"
    # A second mock whose clock never moves: its job stays queued, so its
    # status is computed on every poll (finished jobs' answers are cached).
    waiting = FalMock(MockConfig(request_log_size=1000), clock=ManualClock())
    waiting_app = create_app(waiting)
    asyncio.run(_asgi_rate(waiting_app, "POST", "/fal-ai/flux-1/dev", SUBMIT_BODY, 0.05))
    waiting_path = f"/fal-ai/flux-1/requests/{waiting.requests[-1].request_id}/status"
    cases = {
        "mock status": (app, "GET", status_path, b""),
        "mock status queued": (waiting_app, "GET", waiting_path, b""),
        "bare status": (bare.app, "GET", status_path, b""),
        "mock submit": (app, "POST", "/fal-ai/flux-1/dev", SUBMIT_BODY),
        "bare submit": (bare.app, "POST", "/fal-ai/flux-1/dev", SUBMIT_BODY),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, (target, method, path, body) in cases.items():
            samples[name].append(
                asyncio.run(_asgi_rate(target, method, path, body, seconds / ROUNDS))
            )
    return {name: statistics.median(values) for name, values in samples.items()}


# -- over HTTP ------------------------------------------------------------------


def _wait_completed(client: Any, status_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if client.get(status_url).json()["status"] == "COMPLETED":
            return
        time.sleep(0.2)
    raise RuntimeError(f"{status_url} did not complete")


def over_http(seconds: float, depth: int, connections: int = 64) -> dict[str, float]:
    """Requests per second of each app behind uvicorn on 127.0.0.1.

    The mock runs with `serve`'s default flags (real clock, contract timings,
    no access log): a status poll of a finished job, the result, a media file
    and submits. A second mock (same flags but a manual clock) holds `depth`
    queued jobs that never move: its head is the in-flight job, against the last.
    """
    import tempfile

    import httpx

    mock_port, deep_port, bare_port = free_port(), free_port(), free_port()
    py = sys.executable
    mock_cmd = [py, "-m", "mockserver", "serve", "--port", str(mock_port)]
    deep_cmd = [*mock_cmd[:4], "--port", str(deep_port), "--clock", "manual"]
    bare_cmd = [py, "-m", "uvicorn", "benchmarks.bare:app", "--port", str(bare_port)]
    bare_cmd += ["--log-level", "warning", "--no-access-log"]
    processes = [start(mock_cmd, mock_port), start(deep_cmd, deep_port)]
    headers = {"Authorization": AUTH.decode()}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{mock_port}", headers=headers) as client:
            done = client.post("/fal-ai/flux-1/dev", json={"prompt": "x"}).json()
            _wait_completed(client, done["status_url"])
            result = client.get(done["response_url"]).content
            media_url = httpx.URL(json.loads(result)["images"][0]["url"])
            media = client.get(media_url.path).content
        files = tempfile.mkdtemp(prefix="bench-")
        Path(files, "result.json").write_bytes(result)
        Path(files, "media.jpg").write_bytes(media)
        env = {
            **os.environ,
            "BENCH_RESULT_FILE": f"{files}/result.json",
            "BENCH_MEDIA_FILE": f"{files}/media.jpg",
        }
        bare_process = subprocess.Popen(
            bare_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        processes.append(bare_process)
        start([], bare_port, bare_process)
        with httpx.Client(base_url=f"http://127.0.0.1:{deep_port}", headers=headers) as deep:
            queued = [
                deep.post("/fal-ai/flux-1/dev", json={"prompt": "x"}).json()
                for _ in range(depth + 1)
            ]
        head, last = queued[1], queued[-1]  # [0] holds the only runner

        def get(url: str) -> bytes:
            return request("GET", str(httpx.URL(url).raw_path.decode()), b"")

        submit_raw = request("POST", "/fal-ai/flux-1/dev", SUBMIT_BODY)
        cases = {
            "mock status": (mock_port, get(done["status_url"])),
            "bare status": (bare_port, get(done["status_url"])),
            "mock result": (mock_port, get(done["response_url"])),
            "bare result": (bare_port, get(done["response_url"])),
            "mock media": (mock_port, get(str(media_url))),
            "bare media": (bare_port, get(str(media_url))),
            "mock submit": (mock_port, submit_raw),
            "bare submit": (bare_port, submit_raw),
            "mock status queue head": (deep_port, get(head["status_url"])),
            "mock status queue last": (deep_port, get(last["status_url"])),
        }
        # Rounds interleave the apps so that a noisy moment hurts both; the
        # median of the rounds is reported.
        samples: dict[str, list[float]] = {name: [] for name in cases}
        latencies: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(ROUNDS):
            for name, (port, raw) in cases.items():
                rate, seen = asyncio.run(http_run(port, raw, seconds / ROUNDS, connections))
                samples[name].append(rate)
                latencies[name] += seen
        rates = {name: statistics.median(values) for name, values in samples.items()}
        for name, seen in latencies.items():
            rates[f"{name} p50"] = scale.quantile(seen, 0.5)
            rates[f"{name} p99"] = scale.quantile(seen, 0.99)
        rates["media bytes"] = len(media)
        rates["connections"] = connections
        return rates
    finally:
        stop(processes)


# -- memory ----------------------------------------------------------------------


def memory(jobs: int) -> dict[str, float]:
    """Bytes held per completed job (result, media descriptors, bookkeeping)."""
    clock = ManualClock()
    mock = FalMock(MockConfig(instant=True), clock=clock)
    model = mock.model_for("fal-ai/flux-1/dev")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    # Ten keys' tenants, each one string as a server's (a cached fingerprint).
    tenants = [f"tenant-{i}" for i in range(10)]
    for i in range(jobs):
        mock.submit(
            model, tenants[i % 10], {"prompt": f"prompt {i}"}, base_url="http://127.0.0.1:8000"
        )
    mock.engine.sync()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    assert len(mock.engine) == jobs
    clock.advance(3600)
    while len(mock.engine):  # expiry purges in bounded batches, one per request
        mock.engine.sync()
    gc.collect()
    left = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {
        "jobs": jobs,
        "total_mib": held / 2**20,
        "bytes_per_job": held / jobs,
        "left_kib": left / 1024,
    }


def report(
    inproc: dict[str, float],
    http: dict[str, float],
    mem: dict[str, float],
    seconds: float,
    note: str = "",
) -> str:
    """The results as Markdown."""

    def row(name: str, data: dict[str, float]) -> str:
        status = data["mock status"] / data["bare status"]
        submit = data["mock submit"] / data["bare submit"]
        return (
            f"| {name} | {data['mock status']:,.0f} | {data['bare status']:,.0f} "
            f"| **{status:.0%}** | {data['mock submit']:,.0f} | {data['bare submit']:,.0f} "
            f"| {submit:.0%} |"
        )

    def ratio(name: str, mock: str, bare: str, goal: str) -> str:
        p50, p99 = http[f"{mock} p50"], http[f"{mock} p99"]
        return (
            f"| {name} | {http[mock]:,.0f} | {http[bare]:,.0f} "
            f"| **{http[mock] / http[bare]:.2f}** | {goal} "
            f"| {p50 * 1000:.1f} / {p99 * 1000:.1f} ms ({p99 / p50:.1f}x) "
            f"| {http[f'{bare} p50'] * 1000:.1f} / {http[f'{bare} p99'] * 1000:.1f} ms |"
        )

    head, last = http["mock status queue head"], http["mock status queue last"]
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
            f"Python {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} cores. Requests per second (higher is better).",
            f"Each measurement ran {seconds:g} s in all ({ROUNDS} interleaved rounds, median).",
            *([note] if note else []),
            "",
            "## Over HTTP, `mockserver serve` with its default flags",
            "",
            f"Each app served by uvicorn on 127.0.0.1, loaded by {http['connections']:.0f}"
            " keep-alive connections from this process; rounds interleave the mock and bare",
            "Starlette serving the same bytes, so a noisy moment hurts both. Latency p50 / p99",
            "(p99 over p50: the goal is at most 5x) from every request of the rounds.",
            "",
            "| endpoint | mock | bare Starlette | mock/bare | goal "
            "| mock p50 / p99 | bare p50 / p99 |",
            "|---|---:|---:|---:|---:|---:|---:|",
            ratio("status of a finished job", "mock status", "bare status", ">= 0.85"),
            ratio(
                "status of an in-flight job (queue head, manual clock so it stays there)",
                "mock status queue head",
                "bare status",
                ">= 0.85",
            ),
            ratio("result", "mock result", "bare result", ">= 0.8"),
            ratio(
                f"media ({http['media bytes'] / 1024:.0f} KB JPEG)",
                "mock media",
                "bare media",
                ">= 0.8",
            ),
            ratio("submit", "mock submit", "bare submit", ">= 0.6"),
            "",
            f"Queue depth (a manual clock, so nothing moves): status of the "
            f"{http['depth']:,.0f}th queued job {last:,.0f} requests/s, of the head "
            f"{head:,.0f}: **{head / last:.2f}x** the head's cost (goal <= 1.5x).",
            "",
            "## In process (ASGI, no sockets)",
            "",
            "| setting | mock status poll | bare Starlette | mock/bare "
            "| mock submit | bare submit | mock/bare |",
            "|---|---:|---:|---:|---:|---:|---:|",
            row("in process (ASGI, no sockets)", inproc),
            "",
            "Polling a job still in the queue, whose answer is computed every time,",
            f"runs at {inproc['mock status queued']:,.0f} requests/s in process "
            f"({inproc['mock status queued'] / inproc['bare status']:.0%} of bare).",
            "",
            "## Memory",
            "",
            f"{mem['jobs']:,.0f} completed jobs hold {mem['total_mib']:.1f} MiB "
            f"(**{mem['bytes_per_job']:,.0f} bytes per job**: result JSON, media descriptors,",
            f"job record; goal <= 1 KB), measured with tracemalloc; after they expire "
            f"{mem['left_kib']:,.0f} KiB are left.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and write the Markdown report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--note", default="", help="a line about this run (e.g. machine load)")
    parser.add_argument("--depth", type=int, default=10_000, help="queued jobs ahead of the last")
    parser.add_argument(
        "--connections", type=int, default=64, help="keep-alive connections over HTTP"
    )
    parser.add_argument("--streams", type=int, default=1000, help="idle streams held open")
    parser.add_argument("--expiring", type=int, default=100_000, help="jobs expiring at once")
    parser.add_argument(
        "--only",
        choices=["server", "scale", "plugin", "replicas"],
        help="run one part and keep the other parts' results in --out",
    )
    parser.add_argument("--rounds", type=int, default=3, help="plugin: interleaved runs of each")
    args = parser.parse_args(argv)
    previous = args.out.read_text() if args.out.exists() else ""
    server_text, _, plugin_text = previous.partition(_PLUGIN_HEADING)
    plugin_text = _PLUGIN_HEADING + plugin_text if plugin_text else ""
    server_text, _, replicas_text = server_text.partition(replicas.REPLICAS_HEADING)
    replicas_text = replicas.REPLICAS_HEADING + replicas_text if replicas_text else ""
    server_text, _, scale_text = server_text.partition(scale.SCALE_HEADING)
    scale_text = scale.SCALE_HEADING + scale_text if scale_text else ""
    if args.only in (None, "server"):
        print("in process...", flush=True)
        inproc = in_process(args.seconds)
        print("over HTTP...", flush=True)
        http = over_http(args.seconds, args.depth, args.connections)
        http["depth"] = args.depth
        print("memory...", flush=True)
        mem = memory(args.jobs)
        server_text = report(inproc, http, mem, args.seconds, args.note)
    if args.only in (None, "scale"):
        print("where cost grows with the work...", flush=True)
        measured = scale.measure(args.seconds, ROUNDS, args.streams, args.expiring)
        scale_text = scale.report(measured, args.note)
    if args.only in (None, "replicas"):
        print("replicas on Redis...", flush=True)
        measured_replicas = replicas.measure(args.seconds, args.connections)
        replicas_text = replicas.report(measured_replicas, args.note)
    if args.only in (None, "plugin"):
        print("the pytest plugin (fresh pytest processes)...", flush=True)
        plugin_text = plugin.report(plugin.measure(args.rounds), args.note)
    parts = [server_text, scale_text, replicas_text, plugin_text]
    text = "\n\n".join(part.strip("\n") for part in parts if part.strip()) + "\n"
    args.out.write_text(text)
    print(text)
    return 0


_PLUGIN_HEADING = plugin.PLUGIN_HEADING


if __name__ == "__main__":
    sys.exit(main())
