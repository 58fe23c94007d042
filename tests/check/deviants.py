"""Deliberately non-conformant servers: the mock with one thing broken.

Each deviant wraps the mock's ASGI app and changes one aspect of what it
sends or receives, the way a faulty intermediary would.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from typing import Any

from PIL import Image

from mockserver.media import MediaSpec, render

ASGIApp = Callable[..., Any]
Message = dict[str, Any]
# (scope, status, headers, body) -> (status, body)
ResponseEdit = Callable[[dict[str, Any], int, list[tuple[bytes, bytes]], bytes], tuple[int, bytes]]


def _buffered(app: ASGIApp, edit: ResponseEdit, when: Callable[[dict[str, Any]], bool]) -> ASGIApp:
    """Collect the app's whole answer, edit it, send it (fixing Content-Length)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not when(scope):
            await app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await app(scope, receive, capture)
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        status, body = edit(scope, start["status"], headers, b"".join(chunks))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


def _json_edit(change: Callable[[Any], Any]) -> ResponseEdit:
    def edit(
        scope: dict[str, Any], status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes]:
        return status, json.dumps(change(json.loads(body))).encode()

    return edit


def _is_submit(scope: dict[str, Any]) -> bool:
    return scope["method"] == "POST" and "/requests/" not in scope["path"]


def _is_status(scope: dict[str, Any]) -> bool:
    return bool(scope["path"].rstrip("/").endswith("/status"))


def full_path_urls(app: ASGIApp) -> ASGIApp:
    """Returned URLs carry the full endpoint path (/fal-ai/flux-1/dev/requests/...)."""

    def edit(
        scope: dict[str, Any], status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes]:
        data = json.loads(body)
        if status == 200:
            endpoint = scope["path"].strip("/")
            for name in ("response_url", "status_url", "cancel_url"):
                origin, _, rest = data[name].partition("/requests/")
                data[name] = origin.rsplit("/", 2)[0] + f"/{endpoint}/requests/{rest}"
        return status, json.dumps(data).encode()

    return _buffered(app, edit, _is_submit)


def no_logs_key(app: ASGIApp) -> ASGIApp:
    """Status answers without the `logs` key."""
    return _buffered(
        app, _json_edit(lambda d: {k: v for k, v in d.items() if k != "logs"}), _is_status
    )


def no_logs_while_queued(app: ASGIApp) -> ASGIApp:
    """IN_QUEUE answers without `logs`, as in fal's own documented example."""

    def drop(data: Any) -> Any:
        if data.get("status") != "IN_QUEUE":
            return data
        return {k: v for k, v in data.items() if k != "logs"}

    return _buffered(app, _json_edit(drop), _is_status)


def ok_while_queued(app: ASGIApp) -> ASGIApp:
    """200 instead of 202 while the request is not done."""

    def edit(
        scope: dict[str, Any], status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes]:
        return (200 if status == 202 else status), body

    return _buffered(app, edit, _is_status)


def no_detail_list(app: ASGIApp) -> ASGIApp:
    """422 answers with a plain string instead of the list of problems."""

    def edit(
        scope: dict[str, Any], status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes]:
        return status, (b'{"detail": "invalid input"}' if status == 422 else body)

    return _buffered(app, edit, _is_submit)


def ok_for_unknown(app: ASGIApp) -> ASGIApp:
    """200 with a made-up status for request ids it does not know."""

    def edit(
        scope: dict[str, Any], status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes]:
        return (200, b'{"status": "COMPLETED"}') if status == 404 else (status, body)

    return _buffered(app, edit, lambda scope: "/requests/" in scope["path"])


def wrong_size_media(app: ASGIApp) -> ASGIApp:
    """Media files of another pixel size than the result reports."""

    def edit(
        scope: dict[str, Any], status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes]:
        if status != 200 or (not body.startswith(b"\x89PNG") and not body.startswith(b"\xff\xd8")):
            return status, body
        image = Image.new("RGB", (64, 64), "red")
        out = io.BytesIO()
        image.save(out, format="PNG" if body.startswith(b"\x89PNG") else "JPEG")
        return status, out.getvalue()

    return _buffered(app, edit, lambda scope: scope["path"].startswith("/files/"))


def _is_result(scope: dict[str, Any]) -> bool:
    path = scope["path"].rstrip("/")
    return (
        scope["method"] == "GET"
        and "/requests/" in path
        and not path.endswith(("/status", "/status/stream"))
    )


def _timed_media(value: Any) -> list[dict[str, Any]]:
    """Every audio or video object of a result, however deep."""
    if isinstance(value, list):
        return [found for item in value for found in _timed_media(item)]
    if not isinstance(value, dict):
        return []
    if str(value.get("content_type", "")).startswith(("audio/", "video/")):
        return [value]
    return [found for item in value.values() for found in _timed_media(item)]


def misreported_media(app: ASGIApp) -> ASGIApp:
    """Results claim a minute of 320x240 video and audio, whatever the files hold."""

    def change(result: Any) -> Any:
        for item in _timed_media(result):
            item["duration"] = 60.0
            if item["content_type"].startswith("video/"):
                item.update(width=320, height=240)
        return result

    return _buffered(app, _json_edit(change), _is_result)


def one_second_media(app: ASGIApp) -> ASGIApp:
    """Audio and video files of one second, whatever length was asked (and reported)."""
    clip = render(MediaSpec("video", 64, 64, "mp4", 1, 0, duration=1.0, fps=24.0))
    sound = render(MediaSpec("audio", 0, 0, "wav", 1, 0, duration=1.0))

    def edit(
        scope: dict[str, Any], status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes]:
        if status != 200:
            return status, body
        if body[4:8] == b"ftyp":
            return status, clip
        return (status, sound) if body.startswith(b"RIFF") else (status, body)

    return _buffered(app, edit, lambda scope: scope["path"].startswith("/files/"))


def garbled_media(app: ASGIApp) -> ASGIApp:
    """Audio and video downloads are bytes of no known format (the type header kept)."""

    def edit(
        scope: dict[str, Any], status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes]:
        if status != 200 or not (body[4:8] == b"ftyp" or body.startswith(b"RIFF")):
            return status, body
        return status, b"\0garbled" * 64

    return _buffered(app, edit, lambda scope: scope["path"].startswith("/files/"))


def _edit_request(app: ASGIApp, change: Callable[[dict[str, Any], bytes], bytes]) -> ASGIApp:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        new_body = change(scope, body)
        headers = [
            (k, str(len(new_body)).encode() if k == b"content-length" else v)
            for k, v in scope["headers"]
        ]
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # like a connection with nothing more to say
            sent = True
            return {"type": "http.request", "body": new_body, "more_body": False}

        await app({**scope, "headers": headers}, replay, send)

    return wrapped


def drops_size_and_count(app: ASGIApp) -> ASGIApp:
    """Loses `num_images` and `image_size` in transit (the tutorial's warning)."""

    def change(scope: dict[str, Any], body: bytes) -> bytes:
        if not _is_submit(scope) or not body:
            return body
        data = json.loads(body)
        data.pop("num_images", None)
        data.pop("image_size", None)
        return json.dumps(data).encode()

    return _edit_request(app, change)


def one_tenant(app: ASGIApp, key: str) -> ASGIApp:
    """Every caller is treated as the same account: anyone reads anyone's requests."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = []
            for name, value in scope["headers"]:
                if name == b"authorization" and b" " in value:
                    value = value.split(b" ", 1)[0] + b" " + key.encode()
                headers.append((name, value))
            scope = {**scope, "headers": headers}
        await app(scope, receive, send)

    return wrapped


def endless_stream(app: ASGIApp) -> ASGIApp:
    """The status stream sends its events but never closes (keep-alives forever)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].rstrip("/").endswith("/status/stream"):
            await app(scope, receive, send)
            return

        async def hold_open(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                message = {**message, "more_body": True}
            await send(message)

        await app(scope, receive, hold_open)
        while True:  # keep-alives until the client goes away
            try:
                message = await asyncio.wait_for(receive(), 0.05)
            except TimeoutError:
                await send(
                    {"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True}
                )
                continue
            if message["type"] == "http.disconnect":
                return

    return wrapped
