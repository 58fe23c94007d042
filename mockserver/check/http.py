"""The checker's HTTP: every exchange captured as evidence, never raising."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from mockserver.check.pacing import Deadline, Pacer, within
from mockserver.check.results import Evidence, excerpt

# Media downloads stop here: a checker must not be made to fill the disk or RAM.
MAX_MEDIA_BYTES = 64 * 2**20
_NO_JSON = object()
# Shown as a size, never as text, in evidence.
_MEDIA_TYPES = ("image/", "video/", "audio/", "application/octet-stream")


@dataclass
class Exchange:
    """One request and what came back (or why nothing did)."""

    method: str
    url: str
    status_code: int | None = None
    headers: httpx.Headers | None = None
    body: bytes = b""
    error: str | None = None

    def json(self) -> Any:
        """The body as JSON, or `NO_JSON` when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return _NO_JSON

    def json_object(self) -> dict[str, Any] | None:
        """The body when it is a JSON object, else None."""
        data = self.json()
        return data if isinstance(data, dict) else None

    def header(self, name: str) -> str | None:
        """A response header, if there was a response."""
        return self.headers.get(name) if self.headers is not None else None

    def evidence(self, secrets: tuple[str, ...]) -> Evidence:
        """This exchange as report evidence, secrets masked."""
        content_type = self.header("content-type") or ""
        binary = f"<{len(self.body)} bytes of {content_type or 'binary data'}>"
        if content_type.startswith(_MEDIA_TYPES):
            text = binary
        else:
            try:
                text = self.body.decode("utf-8")
            except UnicodeDecodeError:
                text = binary
        return Evidence(
            method=self.method,
            url=excerpt(self.url, secrets),
            status_code=self.status_code,
            excerpt=excerpt(text, secrets),
            error=excerpt(self.error, secrets) if self.error else None,
        )

    def describe(self) -> str:
        """A short human account of the answer, for a check's reason."""
        if self.error:
            return self.error
        kind = (self.header("content-type") or "no content type").split(";")[0]
        if self.json() is _NO_JSON and self.body:
            return f"HTTP {self.status_code} with a non-JSON body ({kind})"
        return f"HTTP {self.status_code}"


def is_json(value: Any) -> bool:
    """False for the marker `Exchange.json` returns for a non-JSON body."""
    return value is not _NO_JSON


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
            record.headers = response.headers
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    record.error = f"answer larger than {limit} bytes: stopped reading"
                    break
                chunks.append(chunk)
            record.body = b"".join(chunks)

    try:
        await within(pacer, timeout, send())
    except Deadline as exc:
        record.error = f"timed out: {exc}"
    except httpx.ConnectError as exc:
        record.error = f"connection failed: {exc or type(exc).__name__}"
    except httpx.TimeoutException as exc:
        record.error = f"timed out: {exc or type(exc).__name__}"
    except httpx.HTTPError as exc:
        record.error = f"transport error: {type(exc).__name__}: {exc}"
    return record
