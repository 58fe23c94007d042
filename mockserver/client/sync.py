"""`FalClient`: the synchronous reference client."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import httpx
import httpx_sse

from mockserver.client import protocol
from mockserver.client.errors import FalError, FalProtocolError
from mockserver.client.protocol import ClientSettings, Progress, SubscribeMode, check_mode
from mockserver.client.types import Completed, QueueHandle, Status
from mockserver.priority import Priority

__all__ = ["FalClient", "Progress"]


class FalClient:
    """A correct fal queue client: submit, status, stream, result, cancel, subscribe, save.

    `sleep` and `monotonic` are injectable so tests can drive a mock's manual
    clock instead of waiting (e.g. ``sleep=mock.advance``).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._http = httpx.Client(transport=transport, timeout=settings.timeout)
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        settings = self.settings
        return f"FalClient(base_url={settings.base_url!r}, auth_scheme={settings.auth_scheme!r})"

    def __enter__(self) -> FalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- the protocol ------------------------------------------------------------

    def submit(
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
        response = self._send(
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

    def status(self, handle: QueueHandle, *, with_logs: bool = False) -> Status:
        """The request's current status."""
        response = self._send("GET", handle.status_url, params={"logs": "1" if with_logs else "0"})
        return protocol.parse_status(response, handle.request_id)

    def stream_status(
        self, handle: QueueHandle, *, with_logs: bool = False
    ) -> Generator[Status, None, None]:
        """Statuses from the SSE stream, until COMPLETED."""
        params = {"logs": "1" if with_logs else "0"}
        try:
            with httpx_sse.connect_sse(
                self._http,
                "GET",
                handle.stream_url,
                params=params,
                headers=self.settings.auth_headers(),
            ) as source:
                if source.response.status_code >= 400:
                    source.response.read()  # a streamed error's body is not read yet
                protocol.raise_for_error(source.response, handle.request_id)
                for event in source.iter_sse():
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

    def result(self, handle: QueueHandle) -> dict[str, Any]:
        """The output of a completed request."""
        return protocol.parse_result(self._send("GET", handle.response_url), handle.request_id)

    def cancel(self, handle: QueueHandle) -> str:
        """Ask to cancel; returns CANCELLATION_REQUESTED or ALREADY_COMPLETED."""
        return protocol.parse_cancel(self._send("PUT", handle.cancel_url), handle.request_id)

    def subscribe(
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
        """Submit, follow (polling or streaming) until done, return the output.

        With `timeout`, a request not done in time is cancelled and
        `FalTimeoutError` raised.
        """
        check_mode(mode)
        handle = self.submit(
            endpoint_id, arguments, webhook_url=webhook_url, priority=priority, headers=headers
        )
        deadline = protocol.Deadline(timeout, self._monotonic)
        updates = (
            self.stream_status(handle, with_logs=with_logs)
            if mode == "streaming"
            else self._poll(handle, with_logs, poll_interval)
        )
        try:
            for status in updates:
                if on_update is not None:
                    on_update(status)
                if isinstance(status, Completed):
                    break
                if deadline.passed():
                    self._cancel_quietly(handle)
                    raise deadline.error(handle)
        finally:
            updates.close()  # ends an open stream at once
        return self.result(handle)

    def save(
        self, result: dict[str, Any], directory: str | Path, *, progress: Progress | None = None
    ) -> list[Path]:
        """Download every media file of a result into `directory` (before it expires).

        Media are fetched without the API key: they live on a public CDN, and a
        key must never travel to a host it was not meant for.
        """
        saved = []
        for url, path in protocol.downloads(result, Path(directory)):
            try:
                with self._http.stream("GET", url) as response:
                    if response.status_code >= 400:
                        response.read()  # a streamed error's body is not read yet
                    protocol.raise_for_error(response)
                    total = protocol.content_length(response)
                    done = 0
                    with path.open("wb") as file:
                        for chunk in response.iter_bytes():
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

    # -- beyond the queue ----------------------------------------------------------

    def stream(
        self, endpoint_id: str, arguments: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> Generator[Any, None, None]:
        """Run a model on its stream: each partial output, the full output last.

        An error answer (a failed run, a missed start deadline) raises
        `FalHTTPError` with the request id, not a stream error.
        """
        url = protocol.stream_url(self.settings, endpoint_id)
        try:
            with httpx_sse.connect_sse(
                self._http,
                "POST",
                url,
                json=arguments,
                headers={**self.settings.auth_headers(), **(headers or {})},
            ) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                protocol.raise_for_error(source.response)
                for event in source.iter_sse():
                    yield protocol.event_data(event.data, source.response)
        except httpx_sse.SSEError as exc:
            raise FalProtocolError(f"stream of {endpoint_id}: {exc}") from None
        except httpx.RequestError as exc:
            raise protocol.transport_error(f"stream of {endpoint_id}", exc) from None

    def upload(self, data: bytes, content_type: str, file_name: str = "upload.bin") -> str:
        """Store `data` in fal's storage (signed URL; in parts when large); returns its URL."""
        multipart = len(data) > self.settings.multipart_threshold
        body = {"content_type": content_type, "file_name": file_name}
        initiated = self._send(
            "POST", protocol.initiate_url(self.settings, multipart=multipart), json=body
        )
        upload_url, file_url = protocol.parse_initiate(initiated)
        if not multipart:
            # The upload URL is the permission: the key is not sent to it.
            put = self._raw("PUT", upload_url, content=data, headers={"Content-Type": content_type})
            protocol.raise_for_error(put)
            return file_url
        size = self.settings.part_size
        parts = []
        for number, start in enumerate(range(0, len(data), size), start=1):
            chunk = data[start : start + size]
            answer = self._raw("PUT", protocol.part_url(upload_url, str(number)), content=chunk)
            parts.append(protocol.parse_part(answer, number))
        done = self._raw("POST", protocol.part_url(upload_url, "complete"), json={"parts": parts})
        protocol.raise_for_error(done)
        return file_url

    # -- plumbing ------------------------------------------------------------------

    def _raw(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request without the key or retries (signed upload URLs)."""
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.RequestError as exc:
            raise protocol.transport_error(f"{method} {protocol.without_query(url)}", exc) from None

    def _poll(
        self, handle: QueueHandle, with_logs: bool, interval: float
    ) -> Generator[Status, None, None]:
        while True:
            status = self.status(handle, with_logs=with_logs)
            yield status
            if isinstance(status, Completed):
                return
            self._sleep(interval)

    def _cancel_quietly(self, handle: QueueHandle) -> None:
        with contextlib.suppress(FalError):  # the timeout is what the caller must hear
            self.cancel(handle)

    def _send(
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
                response = self._http.request(
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
            self._sleep(delay)
