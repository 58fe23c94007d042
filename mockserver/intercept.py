"""Which hosts are fal's, and one process-wide respx router that sends them to a mock.

The official clients call fal's hosts (and, when those do not answer, the
backup domains fal-client 1.0.3 falls back to). Under an in-process mock every
one of them is answered by the mock; a host that looks like fal's but is not one
the mock knows fails the request (and the test) instead of reaching the network.

Building and patching a respx router costs more than a test that uses it, so
the router is built once per process; `activate`/`deactivate` bracket each test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import respx

#: Hosts the mock answers. rest.alpha.fal.ai: where fal publishes the JWKS its
#: webhooks are signed with; v3.fal.media: the CDN uploads and results live on.
FAL_HOSTS = ("queue.fal.run", "fal.run", "v3.fal.media", "rest.fal.ai", "rest.alpha.fal.ai")
#: fal-client's `_BACKUP_DOMAINS` (backup host -> the host it stands in for).
BACKUP_HOSTS = {"falrun.com": "fal.run", "queue.falrun.com": "queue.fal.run"}
#: Registered domains of fal: any host under one of these is fal-bound.
FAL_DOMAINS = ("fal.run", "fal.ai", "fal.media", "falrun.com")

#: What a test's mock answers a request with: a response, or None to let it pass.
Handler = Callable[[httpx.Request], httpx.Response | None]


class UnmockedFalHost(RuntimeError):
    """A request to a host under fal's domains that the mock does not answer."""

    def __init__(self, url: httpx.URL) -> None:
        super().__init__(
            f"{url.host} looks like a fal host, but the fal mock does not answer it, so the"
            f" request was stopped before it left this machine ({url.copy_with(query=None)})."
            f" Hosts the mock answers: {', '.join(FAL_HOSTS + tuple(BACKUP_HOSTS))}."
        )
        self.url = url


def is_fal_host(host: str) -> bool:
    """True for a host the mock answers (fal's own, or a backup domain)."""
    return host in FAL_HOSTS or host in BACKUP_HOSTS


def is_fal_bound(host: str) -> bool:
    """True for any host under one of fal's domains (known to the mock or not)."""
    return any(host == domain or host.endswith("." + domain) for domain in FAL_DOMAINS)


class _Interceptor:
    """The process's respx router; requests go to the most recently activated handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: list[Handler] = []
        self._router: respx.MockRouter | None = None

    def _build(self) -> respx.MockRouter:
        import respx

        # Patching httpx's transports (not httpcore's pools) is enough for every
        # httpx client, and it is five times cheaper to switch on and off.
        router = respx.mock(assert_all_called=False, assert_all_mocked=False, using="httpx")
        router.route().mock(side_effect=self._dispatch)
        return router

    def _dispatch(self, request: httpx.Request) -> httpx.Response | httpx.Request:
        with self._lock:
            handler = self._handlers[-1] if self._handlers else None
        answer = handler(request) if handler is not None else None
        return request if answer is None else answer  # the request itself: pass through

    def activate(self, handler: Handler) -> None:
        """Route httpx traffic to `handler` until `deactivate(handler)`."""
        with self._lock:
            if self._router is None:
                self._router = self._build()
            if not self._handlers:
                self._router.start()
            self._handlers.append(handler)

    def deactivate(self, handler: Handler) -> None:
        """Stop routing to `handler` (and unpatch httpx when it was the last)."""
        with self._lock:
            if handler in self._handlers:
                self._handlers.remove(handler)
            if not self._handlers and self._router is not None:
                self._router.stop()
                self._router.reset()  # respx keeps every call; forget them


INTERCEPTOR = _Interceptor()
