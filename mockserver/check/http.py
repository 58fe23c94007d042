"""The checker's HTTP: every exchange captured as evidence, never raising."""

from __future__ import annotations

from typing import Any

import httpx

from mockserver.check.exchange import Exchange
from mockserver.check.pacing import Deadline, Pacer, within

# Media downloads stop here: a checker must not be made to fill the disk or RAM.
MAX_MEDIA_BYTES = 64 * 2**20


async def exchange(
    client: httpx.AsyncClient,
    pacer: Pacer,
    timeout: float,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    limit: int = MAX_MEDIA_BYTES,
) -> Exchange:
    """Send one request; any failure becomes `Exchange.error`, never an exception."""
    record = Exchange(method, url)

    async def send() -> None:
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if body is not None:
            kwargs["json"] = body
        async with client.stream(method, url, **kwargs) as response:
            record.status_code = response.status_code
            record.headers = {k.lower(): v for k, v in response.headers.items()}
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    record.error = f"answer larger than {limit} bytes: stopped reading"
                    record.failure = "too-large"
                    break
                chunks.append(chunk)
            record.body = b"".join(chunks)

    try:
        await within(pacer, timeout, send())
    except Deadline as exc:
        record.error, record.failure = f"timed out: {exc}", "timeout"
    except httpx.ConnectError as exc:
        record.error, record.failure = f"connection failed: {exc or type(exc).__name__}", "connect"
    except httpx.TimeoutException as exc:
        record.error, record.failure = f"timed out: {exc or type(exc).__name__}", "timeout"
    except httpx.HTTPError as exc:
        record.error = f"transport error: {type(exc).__name__}: {exc}"
        record.failure = "transport"
    return record
