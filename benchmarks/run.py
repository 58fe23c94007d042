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

from benchmarks import bare, plugin
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


def _request(method: str, path: str, body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: {AUTH.decode()}"]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _http_rate(port: int, raw: bytes, seconds: float, connections: int = 16) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                assert status in (200, 202), head
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                count += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return count / (time.perf_counter() - start)


def _start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            asyncio.run(_http_rate(port, _request("GET", "/", b""), 0.0, 1))
        except (ConnectionError, OSError):
            time.sleep(0.05)
            continue
        except (AssertionError, StopIteration):
            pass  # something answered
        return process
    process.kill()
    raise RuntimeError(f"{command} did not start")


def over_http(seconds: float) -> dict[str, float]:
    """Requests per second of each app behind uvicorn on 127.0.0.1."""
    mock_port, bare_port = free_port(), free_port()
    py = sys.executable
    quiet = ["--log-level", "warning"]
    mock_cmd = [py, "-m", "mockserver", "serve", "--port", str(mock_port), "--instant", *quiet]
    bare_cmd = [py, "-m", "uvicorn", "benchmarks.bare:app", "--port", str(bare_port), *quiet]
    processes = [_start(mock_cmd, mock_port), _start(bare_cmd, bare_port)]
    try:
        import httpx

        queued = httpx.post(
            f"http://127.0.0.1:{mock_port}/fal-ai/flux-1/dev",
            json={"prompt": "x"},
            headers={"Authorization": AUTH.decode()},
        ).json()
        status_path = f"/fal-ai/flux-1/requests/{queued['request_id']}/status"
        status_raw = _request("GET", status_path, b"")
        submit_raw = _request("POST", "/fal-ai/flux-1/dev", SUBMIT_BODY)
        cases = {
            "mock status": (mock_port, status_raw),
            "bare status": (bare_port, status_raw),
            "mock submit": (mock_port, submit_raw),
            "bare submit": (bare_port, submit_raw),
        }
        # Rounds interleave the apps so that a noisy moment hurts both; the
        # median of the rounds is reported.
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(ROUNDS):
            for name, (port, raw) in cases.items():
                samples[name].append(asyncio.run(_http_rate(port, raw, seconds / ROUNDS)))
        return {name: statistics.median(values) for name, values in samples.items()}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


# -- memory ----------------------------------------------------------------------


def memory(jobs: int) -> dict[str, float]:
    """Bytes held per completed job (result, media descriptors, bookkeeping)."""
    clock = ManualClock()
    mock = FalMock(MockConfig(instant=True), clock=clock)
    model = mock.model_for("fal-ai/flux-1/dev")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(jobs):
        mock.submit(
            model, f"tenant-{i % 10}", {"prompt": f"prompt {i}"}, base_url="http://127.0.0.1:8000"
        )
    mock.engine.sync()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(mock.engine) == jobs
    clock.advance(3600)
    mock.engine.sync()
    assert len(mock.engine) == 0  # and all of it is released on expiry
    return {"jobs": jobs, "total_mib": held / 2**20, "bytes_per_job": held / jobs}


def report(inproc: dict[str, float], http: dict[str, float], mem: dict[str, float]) -> str:
    """The results as Markdown."""

    def row(name: str, data: dict[str, float]) -> str:
        status = data["mock status"] / data["bare status"]
        submit = data["mock submit"] / data["bare submit"]
        return (
            f"| {name} | {data['mock status']:,.0f} | {data['bare status']:,.0f} "
            f"| **{status:.0%}** | {data['mock submit']:,.0f} | {data['bare submit']:,.0f} "
            f"| {submit:.0%} |"
        )

    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
            f"Python {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} cores. Requests per second (higher is better).",
            "",
            "| setting | mock status poll | bare Starlette | mock/bare "
            "| mock submit | bare submit | mock/bare |",
            "|---|---:|---:|---:|---:|---:|---:|",
            row("in process (ASGI, no sockets)", inproc),
            row("uvicorn on 127.0.0.1, 16 keep-alive connections", http),
            "",
            "The status poll measured is of a finished job, whose encoded answer the",
            "mock caches. Polling a job still in the queue, whose answer is computed",
            f"every time, runs at {inproc['mock status queued']:,.0f} requests/s in process "
            f"({inproc['mock status queued'] / inproc['bare status']:.0%} of bare).",
            "",
            "The status poll goal is the mock at >= 70% of bare Starlette. The bare app",
            "returns a fixed body of the same shape; the mock authenticates, parses the",
            "fal path, checks the tenant, replays the clock and records the request.",
            "A submit also validates the input against the model's JSON Schema and",
            "queues a job, so it is expected to cost more than the bare echo.",
            "",
            f"Memory: {mem['jobs']:,.0f} completed jobs hold {mem['total_mib']:.1f} MiB "
            f"({mem['bytes_per_job']:,.0f} bytes per job: result JSON, media descriptors,",
            "job record), measured with tracemalloc; all of it is released when the",
            "results expire.",
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
    parser.add_argument(
        "--only",
        choices=["server", "plugin"],
        help="run one part and keep the other part's results in --out",
    )
    parser.add_argument("--rounds", type=int, default=3, help="plugin: interleaved runs of each")
    args = parser.parse_args(argv)
    previous = args.out.read_text() if args.out.exists() else ""
    server_text, _, plugin_text = previous.partition(_PLUGIN_HEADING)
    plugin_text = _PLUGIN_HEADING + plugin_text if plugin_text else ""
    if args.only != "plugin":
        print("in process...", flush=True)
        inproc = in_process(args.seconds)
        print("over HTTP...", flush=True)
        http = over_http(args.seconds)
        print("memory...", flush=True)
        mem = memory(args.jobs)
        server_text = report(inproc, http, mem)
    if args.only != "server":
        print("the pytest plugin (fresh pytest processes)...", flush=True)
        plugin_text = plugin.report(plugin.measure(args.rounds))
    text = server_text.rstrip("\n") + "\n\n" + plugin_text
    args.out.write_text(text)
    print(text)
    return 0


_PLUGIN_HEADING = plugin.PLUGIN_HEADING


if __name__ == "__main__":
    sys.exit(main())
