"""`make bench`, the costs that grow with the work: idle streams, a mass
expiry, a stalled webhook receiver.

Each measurement compares like with like inside one run (two servers with the
same flags, one of them carrying the extra load; requests before and during an
expiry), so a machine shared with other work moves both sides.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from benchmarks.load import http_run, request, start, stop
from mockserver import FalMock, ManualClock, MockConfig
from tests.e2e.server import free_port

AUTH = {"Authorization": "Key bench-key"}
SCALE_HEADING = "## Where cost grows with the work"


# -- idle streams ---------------------------------------------------------------------


async def _hold_streams(port: int, paths: list[str], opened: asyncio.Event) -> None:
    """Open one status stream per path and read them until cancelled."""
    ready = 0

    async def one(path: str) -> None:
        nonlocal ready
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request("GET", path, b""))
            await reader.readuntil(b"\r\n\r\n")
            await reader.readuntil(b"\n\n")  # the first event: the stream is live
            ready += 1
            if ready == len(paths):
                opened.set()
            while await reader.read(4096):
                pass
        finally:
            writer.close()

    await asyncio.gather(*(one(path) for path in paths))


def idle_streams(streams: int, seconds: float, rounds: int) -> dict[str, float]:
    """Status throughput and p99 of a server holding `streams` idle status
    streams, against a twin server (same flags) holding none.

    Both run `serve`'s defaults but with hour-long runs: the first jobs run,
    the rest wait, and nothing changes while they are measured, so the
    streams are idle (a keep-alive every 5 s) as a client's would be.
    """
    flags = ["--run-seconds", "3600"]
    ports = free_port(), free_port()
    py = sys.executable
    processes = [
        start([py, "-m", "mockserver", "serve", "--port", str(port), *flags], port)
        for port in ports
    ]
    try:
        queued: list[list[dict[str, Any]]] = []
        for port in ports:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as client:
                count = streams + 1 if port == ports[0] else 1
                queued.append(
                    [
                        client.post("/fal-ai/flux-1/dev", json={"prompt": "x"}).json()
                        for _ in range(count)
                    ]
                )
        loaded, quiet = queued
        target = {
            "with streams": (ports[0], _path(loaded[0]["status_url"])),
            "without": (ports[1], _path(quiet[0]["status_url"])),
        }
        stream_paths = [_path(job["status_url"]) + "/stream" for job in loaded[1:]]

        async def measure() -> dict[str, float]:
            opened = asyncio.Event()
            holder = asyncio.create_task(_hold_streams(ports[0], stream_paths, opened))
            await asyncio.wait_for(opened.wait(), 120)
            rates: dict[str, list[float]] = {name: [] for name in target}
            latencies: dict[str, list[float]] = {name: [] for name in target}
            for _ in range(rounds):
                for name, (port, path) in target.items():
                    raw = request("GET", path, b"")
                    rate, seen = await http_run(port, raw, seconds / rounds, 16)
                    rates[name].append(rate)
                    latencies[name] += seen
            holder.cancel()
            result: dict[str, float] = {}
            for name in target:
                result[f"{name} rate"] = statistics.median(rates[name])
                result[f"{name} p99"] = quantile(latencies[name], 0.99)
            return result

        measured = asyncio.run(measure())
        measured["streams"] = streams
        return measured
    finally:
        stop(processes)


def _path(url: str) -> str:
    return httpx.URL(url).raw_path.decode()


def quantile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (nearest rank; 0 for none)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# -- a mass expiry ----------------------------------------------------------------------


def expiry_stall(jobs: int) -> dict[str, float]:
    """The longest a request waits on expiry when `jobs` finished jobs expire at
    once: each request purges one bounded batch (the engine's `sync`), timed
    until every job is gone, against a request when nothing expires."""
    clock = ManualClock()
    mock = FalMock(MockConfig(instant=True), clock=clock)
    model = mock.model_for("fal-ai/flux-1/dev")
    for i in range(jobs):
        mock.submit(model, "tenant", {"prompt": f"prompt {i}"}, base_url="http://127.0.0.1")
    mock.engine.sync()
    quiet = []
    for _ in range(200):
        began = time.perf_counter()
        mock.engine.sync()
        quiet.append(time.perf_counter() - began)
    clock.advance(3600)
    stalls, cpu = [], []
    while len(mock.engine):
        began, began_cpu = time.perf_counter(), time.thread_time()
        mock.engine.sync()
        stalls.append(time.perf_counter() - began)
        cpu.append(time.thread_time() - began_cpu)
    return {
        "jobs": jobs,
        "requests": len(stalls),
        "max_ms": max(stalls) * 1000,
        "p99_ms": quantile(stalls, 0.99) * 1000,
        "max_cpu_ms": max(cpu) * 1000,
        "median_ms": statistics.median(stalls) * 1000,
        "quiet_ms": statistics.median(quiet) * 1000,
    }


# -- a stalled webhook receiver ------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    # The default backlog (5) drops connections that a burst of concurrent
    # deliveries opens at once, and their retried SYNs arrive seconds later.
    request_queue_size = 128
    daemon_threads = True


class _Receivers:
    """POST /stall never answers (until the bench ends); POST /ok answers at
    once and notes when each request id arrived."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived: dict[str, float] = {}
        self.all_in = threading.Event()
        self.expected = 0
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/stall":
                    receivers.release.wait(60)
                else:
                    receivers.arrived[json.loads(body)["request_id"]] = time.perf_counter()
                    if len(receivers.arrived) >= receivers.expected:
                        receivers.all_in.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def _receivers() -> Iterator[_Receivers]:
    receivers = _Receivers()
    thread = threading.Thread(target=receivers.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receivers
    finally:
        receivers.release.set()
        receivers.server.shutdown()
        receivers.server.server_close()


def stalled_webhook(count: int) -> dict[str, float]:
    """`mockserver serve --instant`: one request whose webhook receiver never
    answers (the default 10 s timeout), then `count` requests whose receiver
    answers at once. The delay of each of those is from its submit's answer
    to its webhook's arrival."""
    port = free_port()
    process = start(
        [sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--instant"], port
    )
    try:
        with (
            _receivers() as receivers,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as client,
        ):
            receivers.expected = count
            hook = {"prompt": "x"}
            client.post(
                "/fal-ai/flux-1/dev", params={"fal_webhook": f"{receivers.base}/stall"}, json=hook
            )
            sent: dict[str, float] = {}
            for _ in range(count):
                answer = client.post(
                    "/fal-ai/flux-1/dev", params={"fal_webhook": f"{receivers.base}/ok"}, json=hook
                ).json()
                sent[answer["request_id"]] = time.perf_counter()
            receivers.all_in.wait(60)
            delays = [
                receivers.arrived[rid] - at for rid, at in sent.items() if rid in receivers.arrived
            ]
        return {
            "count": count,
            "arrived": len(delays),
            "max_s": max(delays, default=float("inf")),
            "median_s": statistics.median(delays) if delays else float("inf"),
        }
    finally:
        stop([process])


def measure(
    seconds: float, rounds: int, streams: int, expiring: int
) -> dict[str, dict[str, float]]:
    """Every measurement of this section."""
    print("  idle streams...", flush=True)
    idle = idle_streams(streams, seconds, rounds)
    print("  expiry...", flush=True)
    expiry = expiry_stall(expiring)
    print("  webhooks...", flush=True)
    webhooks = stalled_webhook(100)
    return {"streams": idle, "expiry": expiry, "webhooks": webhooks}


def report(data: dict[str, dict[str, float]], note: str = "") -> str:
    """This section as Markdown."""
    idle, expiry, hooks = data["streams"], data["expiry"], data["webhooks"]
    share = 1 - idle["with streams rate"] / idle["without rate"]
    p99 = idle["with streams p99"] / idle["without p99"]
    return "\n".join(
        [
            SCALE_HEADING,
            "",
            *([note, ""] if note else []),
            f"- **{idle['streams']:,.0f} idle status streams** (`serve --run-seconds 3600`:"
            " nothing changes while they are open) against a twin server without them,"
            f" status of the running job: {idle['with streams rate']:,.0f} vs"
            f" {idle['without rate']:,.0f} requests/s (**{share:+.0%}** throughput lost;"
            " goal <= 10%), p99"
            f" {idle['with streams p99'] * 1000:.1f} vs {idle['without p99'] * 1000:.1f} ms"
            f" (**{p99:.2f}x**; goal <= 2x).",
            f"- **{expiry['jobs']:,.0f} jobs expiring at once**: purged over"
            f" {expiry['requests']:,.0f} requests, one bounded batch each; the longest a"
            f" request waited on it **{expiry['max_ms']:.1f} ms** wall clock, of which"
            f" {expiry['max_cpu_ms']:.1f} ms its own CPU (the rest: other processes on the"
            f" machine, or a garbage collection), p99 {expiry['p99_ms']:.1f} ms, median"
            f" {expiry['median_ms']:.1f} ms, {expiry['quiet_ms']:.3f} ms with nothing to"
            " purge; goal <= 20 ms), in process (the engine's `sync`, which every request runs).",
            f"- **{hooks['count']:,.0f} webhooks behind one receiver that never answers**"
            " (`serve --instant`, 10 s delivery timeout):"
            f" {hooks['arrived']:,.0f} arrived, the slowest **{hooks['max_s']:.2f} s** after"
            f" its submit's answer (median {hooks['median_s']:.2f} s; goal <= 1 s).",
            "",
        ]
    )
