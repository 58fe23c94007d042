"""The proxy convention of @fal-ai/client: ``proxyUrl`` apps call the mock directly.

A browser app configured with ``proxyUrl: "/api/fal/proxy"`` sends every
request (queue, run, stream, storage, realtime tokens) to its own server with
the real destination in ``x-fal-target-url``; that server adds the key and
forwards. This route does both ends at once: it reads the target, checks it
is one of fal's hosts, and answers it from this mock in the same request
(streams included), so a JS app is tested by pointing ``proxyUrl`` here.

Without an ``Authorization`` header the route uses the key a server-side
proxy would hold: the first of the ``--keys-env`` keys (sorted), or ``proxy-key`` when any
key is accepted; but only where that gives nobody else the key's rights (in
process, on loopback, or with ``serve --proxy-adds-key``: see
`mockserver.exposure.proxy_adds_key`). Otherwise the request goes in as it
came, and whatever needs a key answers 401.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from mockserver.http import json_response
from mockserver.mock import FalMock

TARGET_URL_HEADER = b"x-fal-target-url"
#: Where @fal-ai/server-proxy mounts by default, and the path fal's Next.js guide uses.
PROXY_PATHS = ("/api/_fal/proxy", "/api/fal/proxy")
_FAL_DOMAINS = ("fal.run", "fal.ai", "fal.media")
_RUN_PREFIX = "/_run"
DEFAULT_PROXY_KEY = "proxy-key"


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


#: The ``x-fal-target-url`` values the route takes: an http(s) or wss URL on one of
#: fal's hosts, printable ASCII (the OpenAPI document states this very pattern).
TARGET_URL_PATTERN = (
    "^(?:" + "|".join(_any_case(scheme) for scheme in ("https", "http", "wss")) + ")://"
    r"(?:[A-Za-z0-9-]+\.)*(?:" + "|".join(_any_case(d) for d in _FAL_DOMAINS) + ")"
    r"(?::[0-9]{1,5})?(?:[/?#][!-~]*)?(?![\s\S])"
)
TARGET_URL_MAX_LENGTH = 4096
_TARGET_URL = re.compile(TARGET_URL_PATTERN)


def routes() -> list[BaseRoute]:
    """The proxy routes (every method: the target decides what is allowed)."""
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return [Route(path, _ProxyEndpoint(), methods=methods) for path in PROXY_PATHS]


def is_fal_host(host: str) -> bool:
    """Is `host` one of fal's (``fal.run``, ``queue.fal.run``, ``rest.fal.ai``, ...)?"""
    host = host.lower()
    return any(host == domain or host.endswith("." + domain) for domain in _FAL_DOMAINS)


class _ProxyEndpoint:
    """An ASGI endpoint re-dispatching the request into the app, at its target path."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k != TARGET_URL_HEADER]
        target = next((v for k, v in scope["headers"] if k == TARGET_URL_HEADER), None)
        if target is None:
            answer = json_response(400, {"detail": "Missing the x-fal-target-url header"})
            await answer(scope, receive, send)
            return
        value = target.decode("latin-1")
        parts = urlsplit(value)
        host = parts.hostname or ""
        if (
            len(value) > TARGET_URL_MAX_LENGTH
            or not _TARGET_URL.search(value)
            or parts.scheme not in ("https", "http", "wss")
            or not is_fal_host(host)
        ):
            detail = "Invalid x-fal-target-url header: the target must be one of fal's hosts"
            await json_response(412, {"detail": detail})(scope, receive, send)
            return
        path = parts.path or "/"
        # fal.run (and its subdomains) answer models synchronously: the mock's
        # own path for that is /_run/...; queue and rest hosts keep their paths.
        if host == "fal.run" or (host.endswith(".fal.run") and not host.startswith("queue.")):
            path = _RUN_PREFIX + path
        mock: FalMock = scope["app"].state.mock
        if mock.config.proxy_adds_key and not any(k == b"authorization" for k, _ in headers):
            keys = mock.config.keys
            key = sorted(keys)[0] if keys else DEFAULT_PROXY_KEY
            scheme = mock.config.profile.auth_scheme
            headers.append((b"authorization", f"{scheme} {key}".encode("latin-1")))
        inner = {
            **scope,
            "path": path,
            "raw_path": path.encode(),
            "query_string": parts.query.encode("latin-1"),
            "headers": headers,
        }
        inner.pop("mockserver.headers", None)  # the cached header map is the outer one's
        inner.pop("path_params", None)
        inner.pop("endpoint", None)
        inner.pop("route", None)
        await scope["app"](inner, receive, send)
