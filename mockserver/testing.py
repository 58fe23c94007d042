"""Test helpers behind the pytest plugin: the mock in process (respx) or on a port.

`InProcessFal` routes httpx traffic for fal's hosts (and any intermediary base
URLs) into a `FalMock`, so unchanged code, the official `fal-client` included,
talks to the mock. `FalServer` runs the mock under uvicorn on 127.0.0.1 for
clients that are not httpx. Both share `Controls`: outcomes, faults, time, and
assertions about what the code under test called.
"""

from __future__ import annotations

import difflib
import functools
import socket
import tempfile
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette

from mockserver.app import create_app
from mockserver.clock import ManualClock
from mockserver.faults import Fault
from mockserver.intercept import (
    BACKUP_HOSTS,
    FAL_HOSTS,  # noqa: F401  (re-exported: it was public here first)
    INTERCEPTOR,
    UnmockedFalHost,
    is_fal_bound,
    is_fal_host,
)
from mockserver.jsonfields import MAX_DURATION_SECONDS, number
from mockserver.mock import FalMock, MockConfig, RecordedRequest
from mockserver.outcomes import Outcome
from mockserver.profiles import FAL_QUEUE_URL, get_profile
from mockserver.transport import SyncAppTransport
from mockserver.webhooks import FAL_JWKS_URL, Attempt, Tamper, webhook_body

DEFAULT_KEY = "fal-mock-key"
_UNSET: Any = object()  # an argument left out (where None has a meaning of its own)
#: Answers that usually mean the code under test did something it did not intend.
UNEXPECTED_STATUSES = frozenset({401, 403, 404, 405, 413, 415, 422})


@dataclass(frozen=True)
class MockOptions:
    """How a test wants its mock (from the marker, ini options and defaults)."""

    profile: str = "official"
    contracts: tuple[Path, ...] = ()
    instant: bool = True
    queue_seconds: float | None = None
    run_seconds: float | None = None
    runners: int = 1
    outcomes: Mapping[str, Any] = field(default_factory=dict)
    intermediary_urls: tuple[str, ...] = ()
    key: str = field(default=DEFAULT_KEY, repr=False)
    unknown_endpoints: Literal["404", "generic"] = "404"

    def build(self) -> FalMock:
        """A fresh mock on a manual clock."""
        timed = self.queue_seconds is not None or self.run_seconds is not None
        config = MockConfig(
            profile=get_profile(self.profile),
            contracts=self.contracts,
            instant=self.instant and not timed,
            queue_seconds=self.queue_seconds,
            run_seconds=self.run_seconds,
            runners=self.runners,
            public_url=self.intermediary_urls[0] if self.intermediary_urls else None,
            unknown_endpoints=self.unknown_endpoints,
        )
        mock = FalMock(config, clock=ManualClock())
        for endpoint, outcome in self.outcomes.items():
            mock.set_outcome(endpoint, as_outcome(outcome))
        return mock

    def without_intermediaries(self) -> MockOptions:
        """These options for a server on a port (which intercepts no hostnames)."""
        return replace(self, intermediary_urls=())

    def server_key(self) -> tuple[Any, ...]:
        """What tells two mocks apart once reset: every option but the outcomes
        (which a reset clears and a test sets again)."""
        return (
            self.profile,
            self.contracts,
            self.instant,
            self.queue_seconds,
            self.run_seconds,
            self.runners,
            self.intermediary_urls,
            self.key,
            self.unknown_endpoints,
        )


def as_outcome(value: Any) -> Outcome:
    """An `Outcome` from an Outcome, a kind name ("model_error"...) or its JSON form."""
    if isinstance(value, Outcome):
        return value
    if isinstance(value, str):
        return Outcome.from_json({"kind": value})
    return Outcome.from_json(value)


class Controls:
    """What a test can do with a mock it owns, in process or on a port."""

    mock: FalMock
    key: str

    def __init__(self) -> None:
        # What `reset` goes back to: `set_timing` replaces the mock's config.
        self._initial_config = self.mock.config

    @property
    def auth_scheme(self) -> str:
        """``Key`` (official profile) or ``Bearer`` (intermediary)."""
        return self.mock.config.profile.auth_scheme

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header for the mock's key."""
        return {"Authorization": f"{self.auth_scheme} {self.key}"}

    def advance(self, seconds: float) -> None:
        """Move the mock's clock (jobs progress, results expire, due webhooks go out)."""
        self.mock.advance(seconds)

    @functools.cached_property
    def webhooks(self) -> WebhookControls:
        """Deliveries: send due ones, inspect them, route them into your app, forge some."""
        return WebhookControls(self.mock, self.jwks_url)

    @property
    def jwks_url(self) -> str:
        """Where the mock's webhook keys are published."""
        return FAL_JWKS_URL

    def set_timing(self, queue_seconds: float = 0.0, run_seconds: float = 0.0) -> None:
        """Give every later job these durations (time moves only by `advance`;
        `reset` goes back to the timing the mock was built with)."""
        # The control input rule: finite, in range, checked before anything changes.
        queue_s = number(queue_seconds, "queue_seconds", 0, MAX_DURATION_SECONDS, " of seconds")
        run_s = number(run_seconds, "run_seconds", 0, MAX_DURATION_SECONDS, " of seconds")
        self.mock.config = replace(
            self.mock.config, instant=False, queue_seconds=queue_s, run_seconds=run_s
        )

    def next_outcome(self, endpoint_id: str, outcome: Any = _UNSET, times: int = 1) -> None:
        """The next `times` requests to `endpoint_id` ("*": any) end this way (an
        `Outcome`, a kind name such as ``"model_error"``, or its JSON form)."""
        if outcome is _UNSET:
            warnings.warn(
                "next_outcome without an outcome: pass outcome='model_error' (like"
                " set_outcome, next_outcome will need one)",
                DeprecationWarning,
                stacklevel=2,
            )
            outcome = "model_error"
        self.mock.next_outcome(endpoint_id, as_outcome(outcome), times)

    def next_output(
        self,
        endpoint_id: str,
        output: dict[str, Any] | None = None,
        *,
        merge: dict[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` results of `endpoint_id` are `output` (exactly), or the
        generated ones with `merge`'s top-level fields replaced. Checked against the
        endpoint's output schema now: a wrong shape raises `InvalidOutput` here."""
        self.mock.next_output(endpoint_id, output, merge=merge, times=times)

    def set_outcome(self, endpoint_id: str, outcome: Any) -> None:
        """Every later request to `endpoint_id` ("*": any) ends this way."""
        self.mock.set_outcome(endpoint_id, as_outcome(outcome))

    def apply_outcomes(self, outcomes: Mapping[str, Any]) -> None:
        """`set_outcome` for each endpoint id -> outcome (the marker's ``outcomes=``)."""
        for endpoint_id, outcome in outcomes.items():
            self.set_outcome(endpoint_id, outcome)

    def add_fault(self, fault: Fault | None = None, /, **fields: Any) -> Fault:
        """Plan a transport fault: a `Fault`, or its fields (``status_code=503``,
        ``latency=1``, ``drop=True``...), as `FalMock.add_fault` takes it."""
        return self.mock.add_fault(fault, **fields)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request the code under test made (secrets masked)."""
        return self.mock.requests

    def calls(
        self, endpoint_id: str | None = None, action: str | None = None
    ) -> list[RecordedRequest]:
        """The requests to an endpoint (its id, or app id for request URLs) and/or action."""
        return [
            r
            for r in self.mock.requests
            if (action is None or r.action == action)
            and (endpoint_id is None or r.endpoint_id in (endpoint_id, _app_of(endpoint_id)))
        ]

    def assert_called(
        self, endpoint_id: str, *, action: str = "submit", times: int | None = None
    ) -> None:
        """Fail, listing what was called, unless `endpoint_id` got `action` (`times` times)."""
        matching = [
            r
            for r in self.calls(endpoint_id, action)
            if action != "submit" or r.endpoint_id == endpoint_id
        ]
        if (times is None and matching) or (times is not None and len(matching) == times):
            return
        expected = f"{times} time(s)" if times is not None else "at least once"
        raise AssertionError(
            f"expected {action} of {endpoint_id} {expected}, got {len(matching)}.\n"
            + _describe_calls(self.mock.requests)
        )

    def assert_not_called(self, endpoint_id: str | None = None) -> None:
        """Fail, listing the calls, if anything (or `endpoint_id`) was called."""
        matching = self.calls(endpoint_id)
        if matching:
            what = endpoint_id or "the fal mock"
            raise AssertionError(
                f"expected no calls to {what}, got {len(matching)}.\n" + _describe_calls(matching)
            )

    def assert_nothing_unexpected(self) -> None:
        """Fail if any request was refused as unauthorised, unknown or invalid
        (401/403/404/405/413/415/422): mistakes, not scripted outcomes; or if an
        endpoint the catalog lacks was answered generically (``unknown_endpoints``)."""
        bad = [r for r in self.mock.requests if r.status_code in UNEXPECTED_STATUSES]
        if bad:
            raise AssertionError(
                f"{len(bad)} request(s) to the fal mock were refused:\n" + _describe_calls(bad)
            )
        generic = self.mock.generic_endpoints
        if generic:
            raise AssertionError(
                "endpoint(s) not in the catalog were answered with a generic output: "
                + ", ".join(generic)
                + " (import their fal OpenAPI documents: mockserver contracts import)"
            )

    def reset(self) -> None:
        """Forget jobs, requests, outcomes, faults, timing set by `set_timing` and
        webhook deliveries (and routes): the mock is as it was built."""
        self.mock.reset()
        self.mock.config = self._initial_config
        self.webhooks.route_to(None)


class WebhookControls:
    """The webhooks of a mock, as a test sees them."""

    def __init__(self, mock: FalMock, jwks_url: str) -> None:
        self._mock = mock
        self.jwks_url = jwks_url
        self._transport: httpx.BaseTransport | None = None  # into the user's app, if routed

    @property
    def jwks(self) -> dict[str, Any]:
        """The key set deliveries are signed with (also served at `jwks_url`)."""
        return self._mock.webhook_jwks()

    def deliver(self) -> list[Attempt]:
        """Send every due delivery now (jobs that ended, retries whose time came)."""
        return self._mock.deliver_webhooks()

    @property
    def attempts(self) -> list[Attempt]:
        """Every delivery attempt so far, oldest first."""
        return self._mock.webhook_attempts

    def route_to(self, app: Any, *, wsgi: bool = False) -> None:
        """Deliver into `app` in process (ASGI, or WSGI with `wsgi=True`), whatever
        the webhook URL's host; None sends them over the network again."""
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        if app is not None:
            self._transport = httpx.WSGITransport(app=app) if wsgi else SyncAppTransport(app)
        self._mock.route_webhooks(self._transport)

    def forge(
        self, url: str, tamper: Tamper = "signature", *, request_id: str = "forged-request"
    ) -> Attempt:
        """Deliver a webhook fal would never send: "signature" (random), "body"
        (changed after signing), "key" (not in the JWKS), "timestamp" (an hour old)."""
        body = webhook_body(request_id, output=b'{"images": []}')
        return self._mock.forge_webhook(
            url, body, request_id=request_id, user_id="forger", tamper=tamper
        )

    def assert_delivered(
        self, request_id: str | None = None, *, status: str | None = None
    ) -> Attempt:
        """The delivered (2xx-answered) webhook of `request_id` (any when None) whose
        body has `status` ("OK"/"ERROR"); fails listing every attempt otherwise."""
        for attempt in self.attempts:
            if not attempt.delivered or attempt.forged:
                continue
            if request_id is not None and attempt.request_id != request_id:
                continue
            if status is not None and attempt.json_body().get("status") != status:
                continue
            return attempt
        lines = [
            f"  #{a.attempt} {a.url} -> {a.status_code or a.error}"
            f" ({a.request_id}{', forged: ' + a.forged if a.forged else ''})"
            for a in self.attempts
        ]
        wanted = f"request {request_id}" if request_id else "any request"
        raise AssertionError(
            f"no delivered webhook for {wanted}"
            + (f" with status {status}" if status else "")
            + ".\nattempts:\n"
            + ("\n".join(lines) if lines else "  (none)")
        )


def _app_of(endpoint_id: str) -> str | None:
    parts = endpoint_id.split("/")
    return (
        "/".join(parts[:2]) if len(parts) > 2 and parts[0] not in ("workflows", "comfy") else None
    )


def _describe_calls(requests: Iterable[RecordedRequest]) -> str:
    lines = [f"  {r.method} {r.path} -> {r.status_code} ({r.action})" for r in requests]
    return "calls made:\n" + ("\n".join(lines) if lines else "  (none)")


class InProcessFal(Controls):
    """The mock behind fal's hostnames, in process, for httpx-based code (respx).

    Every host fal's clients call, the backup domains included, is answered by
    the mock; a request to any other host under fal's domains raises
    `UnmockedFalHost` (and is listed in `unmocked`); other hosts pass through.
    """

    def __init__(self, options: MockOptions) -> None:
        self.options = options
        self.key = options.key
        self.mock = options.build()
        self._transport: SyncAppTransport | None = None  # into a borrowed app, once started
        # (base URL without a trailing slash, its path prefix) of each intermediary
        self._intermediaries = [
            (base.rstrip("/"), urlsplit(base).path.rstrip("/"))
            for base in options.intermediary_urls
        ]
        #: fal-bound requests the mock refused to answer (each also raised).
        self.unmocked: list[str] = []
        super().__init__()

    @property
    def base_url(self) -> str:
        """Where requests go: the intermediary's base, or fal's queue."""
        return self._intermediaries[0][0] if self._intermediaries else FAL_QUEUE_URL

    @property
    def app(self) -> Starlette:
        """The ASGI app answering this mock's requests (while it is started;
        one of the process's `AppPool`, serving this mock only until `stop`)."""
        if self._transport is None:
            raise RuntimeError("the fal mock is not started: it has no app")
        app: Starlette = self._transport.app  # type: ignore[assignment]
        return app

    def _handle(self, request: httpx.Request) -> httpx.Response | None:
        """The mock's answer for an intercepted request (None: not ours, let it pass)."""
        url = request.url
        host = url.host
        if is_fal_host(host):
            if host in BACKUP_HOSTS:  # answered as the host it stands in for
                url = url.copy_with(host=BACKUP_HOSTS[host])
                return self._forward(request, url, host=url.netloc.decode("ascii"))
            return self._forward(request, url)
        if self._intermediaries:
            text = str(url)
            for base, prefix in self._intermediaries:
                if text.startswith(base):
                    return self._forward(
                        request, url.copy_with(path=url.path[len(prefix) :] or "/")
                    )
        if is_fal_bound(host):
            self.unmocked.append(str(url.copy_with(query=None)))
            raise UnmockedFalHost(url)
        return None

    def _forward(
        self, request: httpx.Request, url: httpx.URL, *, host: str | None = None
    ) -> httpx.Response:
        if self._transport is None:  # only reachable by calling a stopped mock's handler
            raise RuntimeError("this fal mock is stopped")
        return self._transport.forward(request, url=url, host=host)

    def start(self) -> InProcessFal:
        """Begin intercepting."""
        if self._transport is None:
            self._transport = SyncAppTransport(APPS.lend(self.mock), shared=True)
        INTERCEPTOR.activate(self._handle)
        return self

    def stop(self) -> None:
        """Stop intercepting and release what the mock holds (its app goes back
        to the pool)."""
        INTERCEPTOR.deactivate(self._handle)
        if self._transport is not None:
            self._transport.close()
            APPS.give_back(self._transport.app)
            self._transport = None
        self.webhooks.route_to(None)


class AppPool:
    """The in-process mocks' Starlette apps, built once per process.

    Building an app (some thirty routes, each path pattern compiled) costs
    more than most tests that use it, and an app keeps no state but the mock
    it serves (``app.state.mock``; every handler finds its mock there). So an
    `InProcessFal` borrows a free app and points it at its own fresh mock;
    `stop` gives it back, pointing at nothing. Mocks alive at the same time
    (one started inside another's test) each borrow their own app.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[Starlette] = []
        self.built = 0  # apps built so far (what a test of the pool looks at)

    def lend(self, mock: FalMock) -> Starlette:
        """A free app (built if none is), serving `mock` until given back."""
        with self._lock:
            app = self._free.pop() if self._free else None
            if app is None:
                self.built += 1
        if app is None:
            return create_app(mock)
        app.state.mock = mock
        return app

    def give_back(self, app: Any) -> None:
        """Return a lent app; it serves no mock until lent again."""
        # Unhooked, so nothing the last test left keeps its mock alive.
        app.state.mock = None
        with self._lock:
            if app not in self._free:
                self._free.append(app)


#: The process's pool (pytest-xdist workers are processes: one pool each).
APPS = AppPool()


class AppServer:
    """Any ASGI app under uvicorn in a thread, on a port of 127.0.0.1 the kernel picks.

    The socket is bound here and handed to uvicorn, so the port is known before
    the server starts and nobody else can take it in between.
    """

    def __init__(self, app: Any, *, ssl: Mapping[str, str] | None = None) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"{'https' if ssl else 'http'}://127.0.0.1:{self.port}"
        self._server = _signalling_server(app, dict(ssl or {}))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> AppServer:
        """Serve until `stop`; returns once the server listens."""
        self._thread.start()
        if not self._server.ready.wait(_START_TIMEOUT) or not self._server.started:
            self.stop()
            raise RuntimeError("the server did not start")
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_START_TIMEOUT = 20.0


def _signalling_server(app: Any, ssl: dict[str, str]) -> Any:
    """A uvicorn server that sets `.ready` once its startup finished (or failed)."""
    import uvicorn

    class SignallingServer(uvicorn.Server):
        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.ready = threading.Event()

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            try:
                await super().startup(sockets)
            finally:
                self.ready.set()

    config = uvicorn.Config(app, log_level="warning", **ssl)  # type: ignore[arg-type]
    return SignallingServer(config)


class FalServer(Controls):
    """The mock under uvicorn on 127.0.0.1 (optionally TLS), for any client."""

    def __init__(self, options: MockOptions, *, tls: bool = False) -> None:
        self.options = options
        self.key = options.key
        self.mock = options.build()
        super().__init__()
        self._directory = tempfile.TemporaryDirectory(prefix="fal-mock-")
        self.ca_file: str | None = None
        self._server = AppServer(create_app(self.mock), ssl=self._certificates() if tls else None)
        self.port = self._server.port
        self.base_url = self._server.base_url

    def _certificates(self) -> dict[str, str]:
        try:
            import trustme
        except ImportError:  # pragma: no cover - depends on the user's install
            raise RuntimeError("TLS needs trustme (the 'tls' extra: pip install trustme)") from None
        authority = trustme.CA()
        certificate = authority.issue_cert("127.0.0.1", "localhost")
        directory = Path(self._directory.name)
        paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
        authority.cert_pem.write_to_path(str(paths["ca"]))
        certificate.cert_chain_pems[0].write_to_path(str(paths["cert"]))
        certificate.private_key_pem.write_to_path(str(paths["key"]))
        self.ca_file = str(paths["ca"])
        return {"ssl_certfile": str(paths["cert"]), "ssl_keyfile": str(paths["key"])}

    @property
    def jwks_url(self) -> str:
        """The mock's webhook keys on this server."""
        return f"{self.base_url}/.well-known/jwks.json"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client process: key, fal-client's host overrides, CA."""
        host = self.base_url.split("://", 1)[1]
        env = {"FAL_KEY": self.key, "FAL_QUEUE_RUN_HOST": host, "FAL_RUN_HOST": f"{host}/_run"}
        if self.ca_file:
            env["SSL_CERT_FILE"] = self.ca_file
        return env

    def start(self) -> FalServer:
        """Serve until `stop` (waits until the server listens)."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and clean up."""
        self._server.stop()
        self._directory.cleanup()
        self.webhooks.route_to(None)


class LiveTarget:
    """The same fixture surface, pointing at a real service (no controls).

    The controls of a mock (`advance`, `next_outcome`, `assert_called`...) skip
    the test that uses them, with the reason; any other name is an
    `AttributeError`, so a typo fails instead of skipping.
    """

    def __init__(self, base_url: str, key: str, auth_scheme: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.auth_scheme = auth_scheme

    def __repr__(self) -> str:
        return f"LiveTarget(base_url={self.base_url!r}, auth_scheme={self.auth_scheme!r})"

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header for the live key."""
        return {"Authorization": f"{self.auth_scheme} {self.key}"}

    def __getattr__(self, name: str) -> Any:
        if name in _MOCK_ONLY:
            import pytest

            pytest.skip(f"fal_mock.{name} needs the mock; this test runs against a live service")
        close = difflib.get_close_matches(name, sorted(_MOCK_ONLY | _LIVE_NAMES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise AttributeError(f"fal_mock has no attribute {name!r}{hint}", name=name, obj=self)


_LIVE_NAMES = frozenset({"base_url", "key", "auth_scheme", "headers"})
#: What only a mock has: the public names of the in-process fixture, but the live ones.
_MOCK_ONLY = frozenset(
    name for name in dir(InProcessFal) if not name.startswith("_") and name not in _LIVE_NAMES
) | {"mock", "options", "unmocked"}

#: What the `fal_mock` fixture gives a test: the in-process mock, or (with
#: ``--fal-live-url``) the live service. Annotate ``fal_mock: FalMockFixture``.
FalMockFixture = InProcessFal | LiveTarget
