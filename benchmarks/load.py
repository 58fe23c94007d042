"""The bench's load generator: raw keep-alive HTTP/1.1 from asyncio, and the
servers it measures started and stopped as processes."""

from __future__ import annotations

import asyncio
import subprocess
import time

AUTH = b"Key bench-key"


def request(method: str, path: str, body: bytes) -> bytes:
    """One raw HTTP/1.1 request, sent as is on every round trip."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: {AUTH.decode()}"]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def http_run(
    port: int, raw: bytes, seconds: float, connections: int = 16
) -> tuple[float, list[float]]:
    """Requests per second over `connections` keep-alive connections for
    `seconds`, and each request's latency (seconds)."""
    count = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (began := time.perf_counter()) < deadline:
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
                latencies.append(time.perf_counter() - began)
                count += 1
        finally:
            writer.close()

    start_at = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return count / (time.perf_counter() - start_at), latencies


async def http_rate(port: int, raw: bytes, seconds: float, connections: int = 16) -> float:
    """Requests per second (see `http_run`)."""
    return (await http_run(port, raw, seconds, connections))[0]


def start(
    command: list[str], port: int, process: subprocess.Popen[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Start `command` (or wait for `process`) until something answers on `port`."""
    if process is None:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            asyncio.run(http_rate(port, request("GET", "/", b""), 0.0, 1))
        except (ConnectionError, OSError):
            time.sleep(0.05)
            continue
        except (AssertionError, StopIteration):
            pass  # something answered
        return process
    process.kill()
    raise RuntimeError(f"{command} did not start")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate each process and wait for it."""
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
