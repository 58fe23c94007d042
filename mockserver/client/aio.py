"""`AsyncFalClient`: the asynchronous reference client, same API as `FalClient`."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import httpx_sse

from mockserver.client import protocol
from mockserver.client.errors import FalError, FalProtocolError
from mockserver.client.protocol import ClientSettings, Progress, SubscribeMode, check_mode
from mockserver.client.types import Completed, QueueHandle, Status
from mockserver.priority import Priority


class AsyncFalClient:
    """The async twin of `FalClient`; `sleep` is an awaitable (e.g. one that
    advances a mock's manual clock)."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(transport=transport, timeout=settings.timeout)
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        settings = self.settings
        return (
            f"AsyncFalClient(base_url={settings.base_url!r}, auth_scheme={settings.auth_scheme!r})"
        )

    async def __aenter__(self) -> AsyncFalClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def submit(
        self,
        endpoint_id: str,
        arguments: dict[str, Any],
        *,
        webhook_url: str | None = None,
        priority: Priority | None = None,
        headers: dict[str, str] | None = None,
    ) -> QueueHandle:
        """Queue a request; returns its handle (URLs already on the base URL).

        `priority` is fal's ``X-Fal-Queue-Priority`` ("normal" or "low"; another
        value is a ValueError before anything is sent).
        """
        params, extra = protocol.submit_request(
            endpoint_id, webhook_url=webhook_url, priority=priority, headers=headers
        )
        url = protocol.submit_url(self.settings.base_url, endpoint_id)
        response = await self._send(
            "POST",
            url,
            json=arguments,
            params=params,
            headers=extra,
            idempotent=self.settings.retry_submit,
        )
        return protocol.parse_handle(response, self.settings, endpoint_id)

    def handle(self, endpoint_id: str, request_id: str) -> QueueHandle:
        """A handle for a request id known from elsewhere (URLs built from the id)."""
        return protocol.handle_for(self.settings.base_url, endpoint_id, request_id)

    async def status(self, handle: QueueHandle, *, with_logs: bool = False) -> Status:
        """The request's current status."""
        response = await self._send(
            "GET", handle.status_url, params={"logs": "1" if with_logs else "0"}
        )
        return protocol.parse_status(response, handle.request_id)

    async def stream_status(
        self, handle: QueueHandle, *, with_logs: bool = False
    ) -> AsyncGenerator[Status, None]:
        """Statuses from the SSE stream, until COMPLETED."""
        params = {"logs": "1" if with_logs else "0"}
        try:
            async with httpx_sse.aconnect_sse(
                self._http,
                "GET",
                handle.stream_url,
                params=params,
                headers=self.settings.auth_headers(),
            ) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                protocol.raise_for_error(source.response, handle.request_id)
                async for event in source.aiter_sse():
                    status = protocol.status_from_json(
                        protocol.event_data(event.data, source.response), source.response
                    )
                    yield status
                    if isinstance(status, Completed):
                        return
        except httpx_sse.SSEError as exc:
            raise FalProtocolError(f"status stream of {handle.request_id}: {exc}") from None
        except httpx.RequestError as exc:
            raise protocol.transport_error(f"status stream of {handle.request_id}", exc) from None
        raise FalProtocolError(f"status stream of {handle.request_id} closed before COMPLETED")

    async def result(self, handle: QueueHandle) -> dict[str, Any]:
        """The output of a completed request."""
        return protocol.parse_result(
            await self._send("GET", handle.response_url), handle.request_id
        )

    async def cancel(self, handle: QueueHandle) -> str:
        """Ask to cancel; returns CANCELLATION_REQUESTED or ALREADY_COMPLETED."""
        return protocol.parse_cancel(await self._send("PUT", handle.cancel_url), handle.request_id)

    async def subscribe(
        self,
        endpoint_id: str,
        arguments: dict[str, Any],
        *,
        with_logs: bool = False,
        on_update: Callable[[Status], Any] | None = None,
        mode: SubscribeMode = "polling",
        poll_interval: float = 0.1,
        timeout: float | None = None,
        webhook_url: str | None = None,
        priority: Priority | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Submit, follow (polling or streaming) until done, return the output."""
        check_mode(mode)
        handle = await self.submit(
            endpoint_id, arguments, webhook_url=webhook_url, priority=priority, headers=headers
        )
        deadline = protocol.Deadline(timeout, self._monotonic)
        updates = (
            self.stream_status(handle, with_logs=with_logs)
            if mode == "streaming"
            else self._poll(handle, with_logs, poll_interval)
        )
        try:
            async for status in updates:
                if on_update is not None:
                    on_update(status)
                if isinstance(status, Completed):
                    break
                if deadline.passed():
                    await self._cancel_quietly(handle)
                    raise deadline.error(handle)
        finally:
            await updates.aclose()
        return await self.result(handle)

    async def save(
        self, result: dict[str, Any], directory: str | Path, *, progress: Progress | None = None
    ) -> list[Path]:
        """Download every media file of a result into `directory` (without the key)."""
        saved = []
        for url, path in protocol.downloads(result, Path(directory)):
            try:
                async with self._http.stream("GET", url) as response:
                    if response.status_code >= 400:
                        await response.aread()
                    protocol.raise_for_error(response)
                    total = protocol.content_length(response)
                    done = 0
                    with path.open("wb") as file:
                        async for chunk in response.aiter_bytes():
                            file.write(chunk)
                            done += len(chunk)
                            if progress is not None:
                                progress(path.name, done, total)
            except httpx.RequestError as exc:
                raise protocol.transport_error(
                    f"download of {protocol.without_query(url)}", exc
                ) from None
            saved.append(path)
        return saved

    async def stream(
        self, endpoint_id: str, arguments: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> AsyncGenerator[Any, None]:
        """Run a model on its stream: each partial output, the full output last."""
        url = protocol.stream_url(self.settings, endpoint_id)
        try:
            async with httpx_sse.aconnect_sse(
                self._http,
                "POST",
                url,
                json=arguments,
                headers={**self.settings.auth_headers(), **(headers or {})},
            ) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                protocol.raise_for_error(source.response)
                async for event in source.aiter_sse():
                    yield protocol.event_data(event.data, source.response)
        except httpx_sse.SSEError as exc:
            raise FalProtocolError(f"stream of {endpoint_id}: {exc}") from None
        except httpx.RequestError as exc:
            raise protocol.transport_error(f"stream of {endpoint_id}", exc) from None

    async def upload(self, data: bytes, content_type: str, file_name: str = "upload.bin") -> str:
        """Store `data` in fal's storage (signed URL; in parts when large); returns its URL."""
        multipart = len(data) > self.settings.multipart_threshold
        body = {"content_type": content_type, "file_name": file_name}
        url = protocol.initiate_url(self.settings, multipart=multipart)
        upload_url, file_url = protocol.parse_initiate(await self._send("POST", url, json=body))
        if not multipart:
            put = await self._raw(
                "PUT", upload_url, content=data, headers={"Content-Type": content_type}
            )
            protocol.raise_for_error(put)
            return file_url
        size = self.settings.part_size
        parts = []
        for number, start in enumerate(range(0, len(data), size), start=1):
            chunk = data[start : start + size]
            answer = await self._raw(
                "PUT", protocol.part_url(upload_url, str(number)), content=chunk
            )
            parts.append(protocol.parse_part(answer, number))
        done = await self._raw(
            "POST", protocol.part_url(upload_url, "complete"), json={"parts": parts}
        )
        protocol.raise_for_error(done)
        return file_url

    async def _raw(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request without the key or retries (signed upload URLs)."""
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.RequestError as exc:
            raise protocol.transport_error(f"{method} {protocol.without_query(url)}", exc) from None

    async def _poll(
        self, handle: QueueHandle, with_logs: bool, interval: float
    ) -> AsyncGenerator[Status, None]:
        while True:
            status = await self.status(handle, with_logs=with_logs)
            yield status
            if isinstance(status, Completed):
                return
            await self._sleep(interval)

    async def _cancel_quietly(self, handle: QueueHandle) -> None:
        with contextlib.suppress(FalError):  # the timeout is what the caller must hear
            await self.cancel(handle)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        all_headers = {**self.settings.auth_headers(), **(headers or {})}
        retries = protocol.Retries(self.settings, self._rng, idempotent=idempotent)
        while True:
            try:
                response = await self._http.request(
                    method, url, json=json, params=params, headers=all_headers
                )
            except httpx.RequestError as exc:
                delay = retries.after_error(exc)
                if delay is None:
                    what = f"{method} {protocol.without_query(url)}"
                    raise protocol.transport_error(what, exc) from None
            else:
                delay = retries.after_response(response)
                if delay is None:
                    return response
            await self._sleep(delay)
