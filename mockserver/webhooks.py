"""Webhook delivery as fal does it: a signed POST when a request ends, with retries.

fal signs each delivery with ED25519 over four lines (request id, user id,
timestamp, SHA-256 hex of the body), puts the pieces in `X-Fal-Webhook-*`
headers and publishes its public keys as a JWKS document. The mock does the
same with a key of its own (served at `/.well-known/jwks.json`), so code that
verifies fal's webhooks verifies the mock's unchanged.

Deliveries are scheduled on the mock's clock (retries with doubling backoff:
tests advance time, never sleep) and sent only to addresses on an allow-list
(loopback by default), so a mock reachable on a network cannot be used to make
requests elsewhere. Over the network they go out concurrently (at most
`WebhookConfig.concurrency` at once), so a receiver that never answers holds
one sender for its timeout, not every other request's webhook.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import ipaddress
import itertools
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    # Imported with the first key pair (see `WebhookSigner`): a test suite's
    # mocks mostly never sign anything, and cryptography is slow to import.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mockserver.clock import Clock, iso_timestamp
from mockserver.redact import redact_url

FAL_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
DEFAULT_ALLOW = ("127.0.0.0/8", "::1", "localhost")
Tamper = Literal["body", "signature", "key", "timestamp"]
_STALE_SECONDS = 3600  # how old a "timestamp" forgery is: far outside any freshness window
_log = logging.getLogger("mockserver.webhooks")


@dataclass(frozen=True)
class WebhookConfig:
    """How deliveries are retried and where they may go.

    The defaults follow fal: 10 retries spread over about two hours
    (7 s, 14 s, 28 s ... doubling: 7 * (2**10 - 1) s ≈ 2 h).
    """

    retries: int = 10
    backoff: float = 7.0
    timeout: float = 10.0
    allow: tuple[str, ...] = DEFAULT_ALLOW
    history: int = 1000  # attempts kept for inspection (oldest dropped): memory stays bounded
    #: Network deliveries in flight at once; each stalled receiver holds one.
    concurrency: int = 16

    def __post_init__(self) -> None:
        if (
            self.retries < 0
            or self.backoff < 0
            or self.timeout <= 0
            or self.history < 1
            or self.concurrency < 1
        ):
            raise ValueError(
                "webhook retries/backoff must be >= 0, timeout > 0, history >= 1, concurrency >= 1"
            )
        for entry in self.allow:
            _allow_entry(entry)  # raises ValueError for a malformed entry


def _allow_entry(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | str:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        name = entry.strip().lower().rstrip(".")
        if not name or "/" in name or " " in name:
            raise ValueError(
                f"webhook allow-list entry {entry!r} is not a host or network"
            ) from None
        return name


#: What `?fal_webhook=` accepts; the OpenAPI document states this very pattern.
#: http(s), then a host (a name or an IPv4 address, with optional user info and
#: port; IPv6 literals are not taken: use a name such as localhost), then any
#: printable ASCII. Written to mean the same in Python and ECMA-262 (the
#: document's dialect): `(?![\s\S])` is the end of the string in both, where
#: `$` would also match before a final newline.
WEBHOOK_URL_PATTERN = r"^https?://[A-Za-z0-9._~%!$&'()*+,;=:@-]+(?:[/?#][!-~]*)?(?![\s\S])"
WEBHOOK_URL_MAX_LENGTH = 2048
_WEBHOOK_URL = re.compile(WEBHOOK_URL_PATTERN)


def is_webhook_url(value: str) -> bool:
    """Is `value` a URL `?fal_webhook=` accepts (`WEBHOOK_URL_PATTERN`, at most 2048 characters)?"""
    return len(value) <= WEBHOOK_URL_MAX_LENGTH and _WEBHOOK_URL.search(value) is not None


def is_allowed(url: str, allow: Iterable[str]) -> bool:
    """True when `url` is http(s) and its host is on the allow-list.

    Names are compared as written, never resolved: a name that resolves to an
    allowed address is not thereby allowed (no DNS rebinding).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in map(_allow_entry, allow):
        if isinstance(entry, str):
            if address is None and host == entry:
                return True
        elif address is not None and address in entry:
            return True
    return False


class WebhookSigner:
    """An ED25519 key pair: signs deliveries, publishes the public half as JWKS."""

    def __init__(self, private_key: Ed25519PrivateKey | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self._key = private_key or Ed25519PrivateKey.generate()
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        self.kid = hashlib.sha256(raw).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"WebhookSigner(kid={self.kid!r})"

    def jwks(self) -> dict[str, Any]:
        """The public key as a JSON Web Key Set (RFC 8037 OKP key)."""
        key = {"kty": "OKP", "crv": "Ed25519", "x": self._x, "kid": self.kid}
        return {"keys": [{**key, "alg": "EdDSA", "use": "sig"}]}

    def headers(self, request_id: str, user_id: str, body: bytes, timestamp: int) -> dict[str, str]:
        """The `X-Fal-Webhook-*` headers for a delivery of `body`."""
        message = signed_message(request_id, user_id, str(timestamp), body)
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": str(timestamp),
            "X-Fal-Webhook-Signature": self._key.sign(message).hex(),
        }


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """What fal signs: four lines, the last the SHA-256 hex digest of the body."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([request_id, user_id, timestamp, digest]).encode()


def webhook_body(
    request_id: str,
    *,
    output: bytes | None = None,
    error_status: int | None = None,
    error_body: Any = None,
) -> bytes:
    """The JSON fal POSTs when a request ends.

    Success: ``{"status": "OK", "payload": <output>}``; an output that is not
    valid JSON (NaN, Infinity...) gives ``payload: null`` and a ``payload_error``.
    Failure: ``{"status": "ERROR", "error": "Invalid status code: N", "payload": <error body>}``.
    """
    body: dict[str, Any] = {"request_id": request_id, "gateway_request_id": request_id}
    if error_status is not None:
        body.update(
            status="ERROR", error=f"Invalid status code: {error_status}", payload=error_body
        )
    else:
        body["status"] = "OK"
        try:
            body["payload"] = json.loads(output or b"null", parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            body["payload"] = None
            body["payload_error"] = f"Output is not valid JSON: {exc}"
    return json.dumps(body, separators=(",", ":")).encode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, as the control API lists it."""

    request_id: str
    url: str
    attempt: int
    at: float  # mock time
    status_code: int | None
    error: str | None
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    forged: str | None = None

    @property
    def delivered(self) -> bool:
        """The receiver answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def json_body(self) -> Any:
        """The delivered body, parsed."""
        return json.loads(self.body)

    def to_json(self) -> dict[str, Any]:
        """JSON form: the URL through the redaction policy (a receiver's token in its
        query is a secret); the signature headers are public and shown as sent."""
        return {
            "request_id": self.request_id,
            "url": redact_url(self.url),
            "attempt": self.attempt,
            "time": iso_timestamp(self.at),
            "status_code": self.status_code,
            "delivered": self.delivered,
            "error": self.error,
            "forged": self.forged,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
        }


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    request_id: str = field(compare=False)
    user_id: str = field(compare=False)
    url: str = field(compare=False)
    body: bytes = field(compare=False, repr=False)
    attempt: int = field(compare=False, default=1)


class WebhookDispatcher:
    """Schedules, signs, sends and records webhook deliveries."""

    def __init__(
        self,
        clock: Clock,
        config: WebhookConfig | None = None,
        *,
        signer: WebhookSigner | None = None,
        wall_clock: Callable[[], float] = time.time,
        claim: Callable[[str], bool] | None = None,
    ) -> None:
        self.clock = clock
        self.config = config or WebhookConfig()
        self._signer = signer  # made on first use: a key pair per mock costs a test
        self._signer_lock = threading.Lock()
        # Replicas all schedule every webhook; the one that claims an attempt
        # sends it, so each is delivered once.
        self._claim = claim or (lambda name: True)
        # Signature timestamps are wall-clock time even on a manual clock: the
        # receiver checks freshness against its own (real) clock.
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._seq = itertools.count()
        self._attempts: deque[Attempt] = deque(maxlen=self.config.history)
        self._transport: httpx.BaseTransport | None = None
        self._senders: ThreadPoolExecutor | None = None  # started on first network delivery
        self._network: httpx.Client | None = None  # shared by the senders (see `_client`)
        self._generation = 0  # bumped by `reset`: an answer arriving later reschedules nothing

    @property
    def signer(self) -> WebhookSigner:
        """The key pair deliveries are signed with (generated when first needed)."""
        with self._signer_lock:
            if self._signer is None:
                self._signer = WebhookSigner()
            return self._signer

    def __repr__(self) -> str:
        return f"WebhookDispatcher(pending={len(self._pending)}, attempts={len(self._attempts)})"

    # -- scheduling --------------------------------------------------------------

    def enqueue(self, request_id: str, user_id: str, url: str, body: bytes) -> None:
        """Deliver `body` to `url` as soon as `deliver_due` runs (now, on the mock clock)."""
        with self._lock:
            item = _Pending(self.clock.now(), next(self._seq), request_id, user_id, url, body)
            heapq.heappush(self._pending, item)

    def has_due(self) -> bool:
        """Cheap: is any delivery due now?"""
        with self._lock:
            return bool(self._pending) and self._pending[0].due <= self.clock.now()

    def deliver_due(self) -> list[Attempt]:
        """Send every delivery that is due and wait for their answers (in due
        order); failures are rescheduled with backoff.

        Over the network they go out concurrently. Through a routed transport
        (an app in process) they go one by one on the calling thread, as that
        app may expect: nothing there stalls but the test's own code.
        """
        due, generation = self._take_due()
        if self._transport is not None or len(due) < 2:
            return [self._send_and_schedule(item, generation) for item in due]
        return [future.result() for future in self._submit(due, generation)]

    def start_due(self) -> list[Future[Attempt]]:
        """Start sending every due delivery and return at once (what a server's
        background worker does): each answer is recorded, and a failure
        rescheduled, when it arrives."""
        due, generation = self._take_due()
        return self._submit(due, generation) if due else []

    def close(self) -> None:
        """Stop the senders: deliveries not started yet are dropped, the ones in
        flight end with their receivers (at most `timeout` seconds)."""
        with self._lock:
            senders, self._senders = self._senders, None
            network, self._network = self._network, None
        if senders is not None:
            senders.shutdown(wait=False, cancel_futures=True)
        if network is not None and senders is None:
            network.close()  # else a sender may still be using it: its GC closes it

    def _take_due(self) -> tuple[list[_Pending], int]:
        now = self.clock.now()
        with self._lock:
            due: list[_Pending] = []
            while self._pending and self._pending[0].due <= now:
                item = heapq.heappop(self._pending)
                if self._claim(f"{item.request_id}/{item.attempt}"):
                    due.append(item)
            return due, self._generation

    def _submit(self, due: list[_Pending], generation: int) -> list[Future[Attempt]]:
        with self._lock:
            if self._senders is None:
                self._senders = ThreadPoolExecutor(
                    self.config.concurrency, thread_name_prefix="mockserver-webhook"
                )
            senders = self._senders
        futures = [senders.submit(self._send_and_schedule, item, generation) for item in due]
        for future in futures:
            future.add_done_callback(_log_failure)
        return futures

    def _send_and_schedule(self, item: _Pending, generation: int) -> Attempt:
        attempt = self._send(item)
        if attempt.delivered or attempt.error == _REFUSED:
            return attempt
        with self._lock:
            if item.attempt <= self.config.retries and generation == self._generation:
                delay = self.config.backoff * 2 ** (item.attempt - 1)
                item.due = self.clock.now() + delay
                item.attempt += 1
                item.seq = next(self._seq)
                heapq.heappush(self._pending, item)
        return attempt

    def _send(self, item: _Pending) -> Attempt:
        headers = self.signer.headers(
            item.request_id, item.user_id, item.body, int(self._wall_clock())
        )
        return self._post(item.request_id, item.url, item.attempt, item.body, headers, None)

    def _post(
        self,
        request_id: str,
        url: str,
        attempt: int,
        body: bytes,
        signature_headers: dict[str, str],
        forged: str | None,
    ) -> Attempt:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "fal-queue-harness-webhook/1",
            **signature_headers,
        }
        status: int | None = None
        error: str | None = None
        transport = self._transport
        if transport is None and not is_allowed(url, self.config.allow):
            error = _REFUSED
        else:
            try:
                status = self._deliver_once(transport, url, body, headers)
            except httpx.TimeoutException:
                error = f"the receiver did not answer within {self.config.timeout:g} s"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        result = Attempt(
            request_id, url, attempt, self.clock.now(), status, error, body, headers, forged
        )
        with self._lock:
            self._attempts.append(result)
        return result

    def _deliver_once(
        self, transport: httpx.BaseTransport | None, url: str, body: bytes, headers: dict[str, str]
    ) -> int:
        if transport is not None:
            # A routed transport outlives this delivery: a client's close would close it.
            client = httpx.Client(transport=transport, timeout=self.config.timeout)
            return client.post(url, content=body, headers=headers).status_code
        return self._client().post(url, content=body, headers=headers).status_code

    def _client(self) -> httpx.Client:
        # One client for every network delivery (httpx clients are thread-safe):
        # a new one per delivery built an SSL context each time, tens of
        # milliseconds of CPU that made a burst of webhooks queue behind it.
        with self._lock:
            if self._network is None:
                self._network = httpx.Client(
                    timeout=self.config.timeout,
                    limits=httpx.Limits(max_connections=self.config.concurrency),
                )
            return self._network

    # -- for tests ------------------------------------------------------------------

    def send(
        self, url: str, body: bytes, *, request_id: str, user_id: str, tamper: Tamper
    ) -> Attempt:
        """Deliver a forged webhook now (not retried): how a test checks that a
        handler rejects what fal would never send.

        `tamper`: "body" (signed, then the body changed), "signature" (random
        bytes), "key" (signed with a key not in the JWKS), "timestamp" (validly
        signed an hour ago: a replay).
        """
        timestamp = int(self._wall_clock())
        signer = self.signer
        signed_body = body
        if tamper == "key":
            signer = WebhookSigner()
        elif tamper == "timestamp":
            timestamp -= _STALE_SECONDS
        elif tamper == "body":
            signed_body = body + b" "
        headers = signer.headers(request_id, user_id, signed_body, timestamp)
        if tamper == "signature":
            headers["X-Fal-Webhook-Signature"] = secrets.token_bytes(64).hex()
        return self._post(request_id, url, 0, body, headers, tamper)

    def route_to(self, transport: httpx.BaseTransport | None) -> None:
        """Send every delivery through `transport` (e.g. into an app in process),
        whatever its URL; None goes back to the network and the allow-list."""
        self._transport = transport

    @property
    def attempts(self) -> list[Attempt]:
        """Every attempt so far, oldest first."""
        with self._lock:
            return list(self._attempts)

    def pending(self) -> list[dict[str, Any]]:
        """Scheduled deliveries (JSON form)."""
        with self._lock:
            items = sorted(self._pending)
        return [
            {
                "request_id": p.request_id,
                "url": p.url,
                "attempt": p.attempt,
                "due": iso_timestamp(p.due),
            }
            for p in items
        ]

    def reset(self) -> None:
        """Forget scheduled deliveries and recorded attempts (the key stays)."""
        with self._lock:
            self._pending.clear()
            self._attempts.clear()
            self._generation += 1


_REFUSED = "not sent: the host is not on the webhook allow-list"


def _log_failure(future: Future[Attempt]) -> None:
    # A failed send is an Attempt with an error; an exception here is a bug,
    # and must not vanish inside the pool.
    if not future.cancelled() and future.exception() is not None:
        _log.error("webhook delivery failed", exc_info=future.exception())
