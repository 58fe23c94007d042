"""`FalMock`: the mock fal service as a Python object.

It owns the catalog, the queue engine, the media registry, the request log,
outcomes and faults. The Starlette app (`mockserver.app`) is a thin HTTP skin
over it, and the control API (`mockserver.control`) exposes its operations; in
process, tests call the same methods directly.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
import sys
import threading
import uuid
import warnings
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import httpx

from mockserver.catalog import Catalog, Model, generic_model, random_seed
from mockserver.catalog_cache import cached_catalog
from mockserver.clock import Clock, ManualClock, NotManualClock, RealClock, iso_timestamp
from mockserver.encoding import compact_json
from mockserver.endpoints import EndpointId, InvalidEndpointId, request_path
from mockserver.errors import (
    InvalidInput,
    JobFailed,
    JobFailure,
    RequestNotFound,
    ResultNotReady,
    Unauthenticated,
    UnknownEndpoint,
)
from mockserver.exposure import ControlAccess
from mockserver.faults import Fault, FaultPlan
from mockserver.jsonfields import InvalidControlInput
from mockserver.markers import MarkerWatch
from mockserver.media import MediaFile, MediaSpec, RecordedFile, media_size, render
from mockserver.outcomes import Outcome, OutcomePlan
from mockserver.outputs import media_objects
from mockserver.priority import PRIORITIES, PRIORITY_HEADER, Priority, parse_priority
from mockserver.profiles import OFFICIAL, Profile
from mockserver.queue import Job, QueueEngine, Retention, State
from mockserver.redact import Redactor, fingerprint, redact_headers, redact_url
from mockserver.store import MemoryStore, Store
from mockserver.tokens import TokenIssuer
from mockserver.uploads import UploadStore, new_name
from mockserver.webhook_jobs import WebhookJobs
from mockserver.webhooks import (
    Attempt,
    Tamper,
    WebhookConfig,
    WebhookDispatcher,
    WebhookSigner,
    is_webhook_url,
)

#: What `mockserver serve` uses when a contract sets no timing: a person polling
#: with curl sees each phase.
DEFAULT_QUEUE_SECONDS = 1.0
DEFAULT_RUN_SECONDS = 1.0
_BUCKETS = ("rabbit", "lion", "koala", "tiger", "panda", "zebra", "monkey", "penguin")
_MAX_LOGGED_BODY = 64 * 1024
_FINAL_STATUS_CACHE = 4096
_LEARNT_KEYS = 4096
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class InvalidOutput(InvalidControlInput):
    """A scripted output that does not fit the endpoint's output schema."""


def output_problems(
    model: Model, output: dict[str, Any] | None, merge: dict[str, Any] | None
) -> list[str]:
    """What is wrong with a scripted `output` (or with the generated one after
    `merge`) for `model`, one line each; empty when it fits."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(model.output_schema)
    if output is not None:
        candidate: dict[str, Any] = output
    else:
        assert merge is not None
        # A generated output has every property its examples have; with none
        # recorded, the merged fields are checked alone (plus what is required).
        base = dict(model.examples[0]["output"]) if model.examples else {}
        candidate = {**base, **merge}
        if not model.examples:
            schema = {k: v for k, v in model.output_schema.items() if k != "required"}
            validator = Draft202012Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
        for error in sorted(validator.iter_errors(candidate), key=lambda e: list(map(str, e.path)))
    ]


# HTTP names that used to live here; the HTTP layer owns them now.
_MOVED_TO_HTTP = ("HttpError", "validation_error")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_HTTP:
        warnings.warn(
            f"mockserver.mock.{name} moved to mockserver.http.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        from mockserver import http

        return getattr(http, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class MockConfig:
    """Everything that shapes a mock server; every field has a sensible default.

    `keys` is the set of accepted API keys (None: any non-empty key). Timing:
    `queue_seconds`/`run_seconds` override every model's contract timing;
    `instant` makes both zero. `public_url` fixes the base of returned URLs
    (else each request's own origin, honouring X-Forwarded-Proto/Host).
    """

    profile: Profile = OFFICIAL
    keys: frozenset[str] | None = field(default=None, repr=False)
    public_url: str | None = None
    contracts: tuple[Path, ...] = ()
    builtin_contracts: bool = True
    runners: int = 1
    queue_seconds: float | None = None
    run_seconds: float | None = None
    instant: bool = False
    retention: Retention = field(default_factory=Retention)
    max_body_bytes: int = 10 * 1024 * 1024
    max_jobs: int = 1_000_000
    request_log_size: int = 1000
    stream_keepalive: float = 5.0
    run_hosts: frozenset[str] = frozenset({"fal.run"})
    seed: int | None = None
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    # "404" like fal; "generic": endpoints the catalog lacks get a generic image answer.
    unknown_endpoints: Literal["404", "generic"] = "404"
    control: ControlAccess = field(default_factory=ControlAccess)
    # The proxy route adds a key to keyless requests (see `exposure.proxy_adds_key`):
    # yes in process and on loopback; `serve` on another address only when asked.
    proxy_adds_key: bool = True


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the mock received, with secrets removed."""

    time: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    action: str
    endpoint_id: str | None
    request_id: str | None
    body: Any
    status_code: int
    #: Fingerprints of the key it carried (see `redact.key_fingerprints`):
    #: enough to tell whose key it was, never the key.
    key_fingerprints: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form, as the control API lists it."""
        return {
            "time": iso_timestamp(self.time),
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "action": self.action,
            "endpoint_id": self.endpoint_id,
            "request_id": self.request_id,
            "body": self.body,
            "status_code": self.status_code,
            "key_fingerprints": list(self.key_fingerprints),
        }


@dataclass(slots=True)
class _JobExtras:
    """What the mock keeps per job beyond the engine's state."""

    base_url: str
    seed: int
    headers: Mapping[str, str]
    webhook: str | None
    recorded: int | None = None  # index of the recorded example this input replays


class FalMock:
    """The mock fal service: protocol operations plus the control operations."""

    def __init__(
        self,
        config: MockConfig | None = None,
        *,
        clock: Clock | None = None,
        catalog: Catalog | None = None,
        store: Store | None = None,
    ) -> None:
        self.config = config or MockConfig()
        #: Where every change of state goes (see `mockserver.store`): this
        #: process alone by default; a shared store makes this mock one replica.
        self.store: Store = store or MemoryStore()
        self.clock: Clock = clock or self.store.clock or RealClock()
        if self.store.clock is not None and self.clock is not self.store.clock:
            # Replicas move one clock through the store; another would drift apart.
            raise ValueError("a shared store drives its own clock: leave `clock` out")
        # Media file names are derived from the job id with this key, so every
        # replica that builds a job's result names its files alike.
        self._media_key = self.store.secret
        # Loaded once per process for the same (unchanged) contract files.
        self.catalog = catalog or cached_catalog(
            *self.config.contracts, builtin=self.config.builtin_contracts
        )
        self._rng = random.Random(self.config.seed)
        self._lock = threading.RLock()
        self._extras: dict[str, _JobExtras] = {}
        self._media: dict[str, MediaFile] = {}
        self._generic: dict[str, Model] = {}  # unknown endpoints answered generically
        self.outcomes = OutcomePlan()
        self.faults = _SharedFaults(self.store) if self.store.shared else FaultPlan()
        self.markers = MarkerWatch()
        #: Every key clients sent (the latest `_LEARNT_KEYS`), masked in control answers.
        self.redactor = Redactor(limit=_LEARNT_KEYS)
        self.uploads = (
            _SharedUploads(self.store, self.clock, ttl=self.config.retention.seconds)
            if self.store.shared
            else UploadStore(self.clock, ttl=self.config.retention.seconds)
        )
        self.tokens = TokenIssuer(self.clock)
        self._log: deque[RecordedRequest] = deque(maxlen=self.config.request_log_size)
        # Encoded status answers of finished jobs: a finished job's status never
        # changes, and clients poll it repeatedly. Keyed by job id, then (base
        # URL, with logs), so a purged job's answers go with it. Bounded, oldest
        # job out first.
        self._final_status: dict[str, dict[tuple[str, bool], bytes]] = {}
        self.webhooks = WebhookDispatcher(
            self.clock,
            self.config.webhooks,
            # Replicas sign with one key: any of them serves the JWKS that verifies.
            signer=_shared_signer(self._media_key) if self.store.shared else None,
            claim=self.store.claim,
        )
        # The engine reports each ending; the jobs that asked for a webhook
        # become deliveries. (`failure_of` is looked up per call: tests patch it.)
        self._webhook_jobs = WebhookJobs(self.webhooks, lambda job: self.failure_of(job))
        self.engine = QueueEngine(
            self.clock,
            runners=self.config.runners,
            retention=self.config.retention,
            max_jobs=self.config.max_jobs,
            on_complete=self._complete,
            on_purge=self._purge,
            on_finish=self._webhook_jobs.finished,
        )
        self.store.bind(self._apply)

    def __repr__(self) -> str:
        return (
            f"FalMock(profile={self.config.profile.name!r}, models={len(self.catalog)},"
            f" jobs={len(self.engine)}, clock={self.clock!r})"
        )

    # -- auth ------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> str:
        """The tenant (a key fingerprint) for an Authorization header;
        `Unauthenticated` when it admits nobody."""
        scheme = self.config.profile.auth_scheme
        if not authorization or not authorization.strip():
            raise Unauthenticated("missing", scheme)
        given, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if key:
            self.redactor.learn(key)  # accepted or not, a key is never shown
        if given.lower() != scheme.lower() or not key:
            raise Unauthenticated("malformed", scheme)
        if self.config.keys is not None and key not in self.config.keys:
            raise Unauthenticated("unknown_key", scheme)
        return fingerprint(key)

    # -- protocol --------------------------------------------------------------

    def model_for(self, endpoint_id: str) -> Model:
        """The model of an endpoint id (`UnknownEndpoint` when there is none)."""
        model = self.catalog.get(endpoint_id) or self._generic.get(endpoint_id)
        if model is None:
            if self.config.unknown_endpoints != "generic":
                raise UnknownEndpoint(endpoint_id)
            model = generic_model(endpoint_id)
            with self._lock:
                self._generic[endpoint_id] = model
        return model

    @property
    def generic_endpoints(self) -> list[str]:
        """Endpoints the catalog lacks that were answered generically (since the
        last reset): a test may want to hear about them."""
        return sorted(self._generic)

    def submit(
        self,
        model: Model,
        tenant: str,
        payload: Any,
        *,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        webhook: str | None = None,
        sync: bool = False,
    ) -> tuple[Job, int]:
        """Validate and queue a request (`sync`: run it at once, bypassing the queue).

        `InvalidInput` for a payload or header the endpoint refuses; `QueueFull`
        when the engine holds its maximum of jobs.
        """
        issues = model.validate(payload)
        if issues:
            raise InvalidInput([issue.to_json() for issue in issues])
        if webhook is not None and not is_webhook_url(webhook):
            raise InvalidInput.one(
                ["query", "fal_webhook"], "Input should be an http(s) URL", "url_parsing"
            )
        fal_headers = {k.lower(): v for k, v in (headers or {}).items()}
        priority = _priority(fal_headers.get("x-fal-queue-priority"))
        timeout = _timeout(fal_headers.get("x-fal-request-timeout"))
        data = model.with_defaults(payload)
        seed = data["seed"] if isinstance(data.get("seed"), int) else random_seed(self._rng)
        # A shared store needs the id before the job exists (every replica
        # creates it under the same one); alone, the engine draws it.
        request_id = str(uuid.uuid4()) if self.store.shared else None
        job, position = self.store.commit(
            "submit",
            (
                model.endpoint_id,
                tenant,
                payload,
                data,
                base_url,
                fal_headers,
                webhook,
                sync,
                priority,
                timeout,
                seed,
                request_id,
            ),
        )
        return job, position

    def _enqueue(
        self,
        endpoint_id: str,
        tenant: str,
        payload: Any,
        data: dict[str, Any],
        base_url: str,
        fal_headers: dict[str, str],
        webhook: str | None,
        sync: bool,
        priority: Priority,
        timeout: float | None,
        seed: int,
        request_id: str | None,
    ) -> tuple[Job, int]:
        """Queue a validated request (the "submit" operation, in the store's order:
        the scripted outcome it takes depends on the submits before it)."""
        model = self.model_for(endpoint_id)
        outcome = self.outcomes.take(model.endpoint_id)
        queue_s, run_s = self._durations(model, outcome)
        # fal.run (sync) answers directly: there is no webhook to call.
        extras = _JobExtras(
            sys.intern(base_url),
            seed,
            fal_headers or _NO_HEADERS,  # most jobs have none: no empty dict each
            None if sync else webhook,
            model.recorded_example(data),
        )
        with self._lock:
            job, position = self.engine.submit(
                tenant=tenant,
                endpoint_id=model.endpoint_id,
                # Interned: one string per app, not one per job.
                app_id=sys.intern(model.app_id),
                priority=priority,
                queue_seconds=0.0 if sync else queue_s,
                run_seconds=0.0 if sync else run_s,
                outcome=outcome,
                logs=outcome.logs if outcome.logs is not None else model.logs,
                timeout=timeout,
                payload=data,
                on_created=lambda job: self._created(job, extras),
                request_id=request_id,
                sync=sync,
            )
        self.markers.observe(payload, job.id, tenant)
        return job, position

    def urls(self, job: Job, base_url: str) -> dict[str, str]:
        """response/status/cancel URLs of a job, on the profile's request base."""
        response_url = (self.config.profile.request_url_base or base_url).rstrip("/") + (
            request_path(job.app_id, job.id)
        )
        return {
            "response_url": response_url,
            "status_url": response_url + "/status",
            "cancel_url": response_url + "/cancel",
        }

    def find(self, tenant: str, app_id: str, request_id: str) -> Job:
        """The job a request URL addresses; `RequestNotFound` when it is unknown,
        expired or another key's."""
        job = self.engine.get(request_id, tenant)
        if job is None or job.app_id != app_id:
            raise RequestNotFound(request_id)
        return job

    def status_body(
        self, job: Job, base_url: str, *, with_logs: bool, logs_from: int = 0
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of a status poll; `logs_from` skips logs already sent."""
        now = self.clock.now()
        body: dict[str, Any] = {"status": job.state.value, "request_id": job.id}
        body.update(self.urls(job, base_url))
        if job.state is State.IN_QUEUE:
            body["queue_position"] = self.queue_position(job)
        body["logs"] = (
            [
                {
                    "message": line.message,
                    "level": line.level,
                    "source": "USER",
                    "timestamp": iso_timestamp(at),
                }
                for at, line in job.visible_logs(now)[logs_from:]
            ]
            if with_logs
            else None
        )
        if job.state is State.COMPLETED:
            if job.started_at is not None and job.ended_at is not None:
                body["metrics"] = {"inference_time": round(job.ended_at - job.started_at, 6)}
            failure = self.failure_of(job)
            if failure is not None:
                body["error"] = failure.text()
                body["error_type"] = failure.error_type or job.outcome.error_type
            return 200, body
        return 202, body

    def status_json(self, job: Job, base_url: str, *, with_logs: bool) -> tuple[int, bytes]:
        """`status_body`, JSON-encoded; cached once the job has finished."""
        if job.state is not State.COMPLETED:
            code, body = self.status_body(job, base_url, with_logs=with_logs)
            return code, compact_json(body)
        key = (base_url, with_logs)
        answers = self._final_status.get(job.id)
        cached = answers.get(key) if answers is not None else None
        if cached is None:
            _, body = self.status_body(job, base_url, with_logs=with_logs)
            cached = compact_json(body)
            with self._lock:
                answers = self._final_status.get(job.id)
                if answers is None:
                    if len(self._final_status) >= _FINAL_STATUS_CACHE:
                        del self._final_status[next(iter(self._final_status))]
                    answers = self._final_status[job.id] = {}
                answers[key] = cached
        return 200, cached

    def failure_of(self, job: Job) -> JobFailure | None:
        """How a completed job failed (None for success)."""
        if job.cancelled:
            return JobFailure(499, "Request was cancelled")
        if job.timed_out:
            # fal's answer to a missed start deadline; the timeout type (a
            # header) is what tells the official clients not to retry it.
            return JobFailure(
                504,
                "Request did not start within X-Fal-Request-Timeout",
                error_type="request_timeout",
                timeout_type="user",
            )
        outcome = job.outcome
        if outcome.kind == "model_error":
            return JobFailure(outcome.status_code, outcome.detail)
        if outcome.kind == "infra_error":
            return JobFailure(
                outcome.status_code,
                outcome.detail,
                error_type=outcome.error_type or "internal_error",
            )
        return None

    def error_of(self, job: Job) -> Any:
        """Deprecated: `failure_of` says how a job failed, and
        `mockserver.http.http_error(JobFailed(...))` is its HTTP answer."""
        warnings.warn(
            "FalMock.error_of is deprecated: use FalMock.failure_of",
            DeprecationWarning,
            stacklevel=2,
        )
        failure = self.failure_of(job)
        if failure is None:
            return None
        from mockserver.http import http_error  # the HTTP layer, only for this old name

        return http_error(JobFailed(failure))

    def result(self, job: Job) -> tuple[int, bytes]:
        """(status, JSON bytes) of a result fetch: `ResultNotReady` before the job
        completed, `JobFailed` when it ended badly."""
        if job.state is not State.COMPLETED:
            raise ResultNotReady(in_queue=job.state is State.IN_QUEUE)
        failure = self.failure_of(job)
        if failure is not None:
            raise JobFailed(failure)
        assert isinstance(job.result, bytes)
        return 200, job.result

    def queue_position(self, job: Job) -> int:
        """Jobs ahead of a queued `job`; never more than any replica reported."""
        before = job.best_position
        position = self.engine.queue_position(job)
        # Only a low-priority job's position can grow (later normal jobs pass
        # it); replicas learn the best one reported so that none reports more.
        if position < before and job.priority == "low" and self.store.shared:
            self.store.commit("position", (job.id, position))
        return position

    def cancel(self, job: Job) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of a cancel request."""
        if self.store.commit("cancel", (job.id,)):
            return 202, {"status": "CANCELLATION_REQUESTED"}
        return 400, {"status": "ALREADY_COMPLETED", "detail": "Request already completed"}

    def media(self, name: str) -> tuple[str, str, bytes] | None:
        """(content type, file name, bytes) behind a /files/ name: a generated
        media file or an upload (None when unknown or expired)."""
        # Media exist only once their job has completed: no queue to replay,
        # only expired jobs (and their media) to drop.
        self.engine.purge_expired()
        spec = self._media.get(name.split(".", 1)[0])
        if spec is not None:
            return spec.content_type, spec.file_name, render(spec)
        stored = self.uploads.get(name)
        if stored is not None:
            return stored.content_type, stored.file_name, stored.data
        return None

    # -- control -----------------------------------------------------------------

    def reset(self) -> None:
        """Forget jobs, media, uploads, recorded requests, outcomes and faults."""
        self.store.commit("reset", ())

    def _reset(self) -> None:
        with self._lock:
            self.engine.reset()
            self.uploads.clear()
            self.tokens.clear()
            self.outcomes.clear()
            self.faults.clear()
            self.markers.clear()
            self._log.clear()
            self._final_status.clear()
            self._generic.clear()
            self._webhook_jobs.reset()
            self.webhooks.reset()

    def advance(self, seconds: float) -> float:
        """Move a manual clock forward (jobs progress, results expire, due webhooks
        are delivered before this returns); returns the new time.

        `NotManualClock` on a real clock; `InvalidControlInput` (clock unmoved)
        for a step that is not finite or leaves the clock's range.
        """
        if not isinstance(self.clock, ManualClock):
            raise NotManualClock(
                "the clock is real: start the mock with a manual clock to advance it"
            )
        now: float = self.store.commit("advance", (seconds,))
        self.deliver_webhooks()
        return now

    def set_time(self, timestamp: float) -> None:
        """Move a manual clock to `timestamp` (not earlier than now); like `advance`."""
        if not isinstance(self.clock, ManualClock):
            raise NotManualClock("the clock is real: start the mock with a manual clock to set it")
        self.store.commit("clock_set", (timestamp,))
        self.deliver_webhooks()

    def set_outcome(self, endpoint_id: str, outcome: Outcome) -> None:
        """Every later request to `endpoint_id` ("*": any) ends with `outcome`.

        An outcome with an `output` (or `merge`) is checked against the
        endpoint's output schema now: `InvalidOutput` says what does not fit.
        """
        self.check_output(endpoint_id, outcome)
        self.store.commit("outcome_always", (endpoint_id, outcome))

    def next_outcome(self, endpoint_id: str, outcome: Outcome, times: int = 1) -> None:
        """The next `times` requests to `endpoint_id` ("*": any) end with `outcome`
        (checked like `set_outcome`'s; `times` is kept as a counter)."""
        self.check_output(endpoint_id, outcome)
        self.store.commit("outcome_next", (endpoint_id, outcome, times))

    def next_output(
        self,
        endpoint_id: str,
        output: dict[str, Any] | None = None,
        *,
        merge: dict[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` results of `endpoint_id` are `output`, or the generated
        ones with `merge`'s top-level fields replaced; checked against the output schema."""
        self.next_outcome(endpoint_id, Outcome.with_output(output, merge=merge), times)

    def check_output(self, endpoint_id: str, outcome: Outcome) -> None:
        """Raise `InvalidOutput` unless `outcome`'s scripted result fits the endpoint."""
        if outcome.output is None and outcome.merge is None:
            return
        model = self.catalog.get(endpoint_id)
        if model is None:
            raise InvalidOutput(
                f"a scripted output needs a known endpoint (its output schema checks it),"
                f" got {endpoint_id!r}"
            )
        problems = output_problems(model, outcome.output, outcome.merge)
        if problems:
            raise InvalidOutput(
                f"the output for {endpoint_id} does not match its output schema:\n  "
                + "\n  ".join(problems)
            )

    def add_fault(self, fault: Fault | None = None, /, **fields: Any) -> Fault:
        """Plan a transport fault for matching requests: a `Fault`, or its fields
        (``status_code=503``, ``latency=1``, ``drop=True``...)."""
        if (fault is None) == (not fields):
            raise TypeError("add_fault takes a Fault or its fields (one of the two)")
        return self.faults.add(fault if fault is not None else Fault.from_json(fields))

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far (oldest first, secrets removed)."""
        if self.store.shared:
            return self.store.recorded()
        return list(self._log)

    def record(self, entry: RecordedRequest) -> None:
        """Append to the request log (bounded: the oldest entries drop out)."""
        if self.store.shared:
            # Not an operation: nothing else depends on it, and every replica
            # applying every poll of every other would cost them all.
            self.store.record(entry)
        else:
            self._log.append(entry)

    def refresh(self) -> None:
        """Catch up with what other replicas changed (nothing to do alone).

        The HTTP app does this before every request; Python callers of a
        replica's reading methods do it when they want the others' news."""
        self.store.refresh()

    def _apply(self, kind: str, args: tuple[Any, ...]) -> Any:
        """Apply one operation of the store (see `mockserver.store`)."""
        if kind == "submit":
            return self._enqueue(*args)
        if kind == "cancel":
            self.markers.cancelled(args[0])  # a two-sided load counts cancels that arrive
            job = self.engine.find(args[0])
            return job is not None and self.engine.cancel(job)
        if kind == "position":
            job = self.engine.find(args[0])
            if job is not None:
                job.best_position = min(job.best_position, args[1])
            return None
        if kind == "reset":
            return self._reset()
        if kind == "advance":
            assert isinstance(self.clock, ManualClock)
            return self.clock.advance(args[0])
        if kind == "clock_set":
            assert isinstance(self.clock, ManualClock)
            return self.clock.set(args[0])
        if kind == "outcome_always":
            return self.outcomes.always(*args)
        if kind == "outcome_next":
            return self.outcomes.next(*args)
        if kind == "fault_add":
            return FaultPlan.add(self.faults, *args)
        if kind == "fault_take":
            return FaultPlan.take(self.faults, *args)
        if kind == "fault_clear":
            return FaultPlan.clear(self.faults)
        if kind == "upload":
            data, content_type, file_name, name = args
            return UploadStore.store(self.uploads, data, content_type, file_name, name=name)
        raise ValueError(f"unknown operation {kind!r}")

    def job_summary(self, job: Job) -> dict[str, Any]:
        """A JSON description of a job for the control API."""
        extras = self._extras.get(job.id)
        return {
            "request_id": job.id,
            "endpoint_id": job.endpoint_id,
            "key_fingerprint": job.tenant,
            "status": job.state.value,
            "cancelled": job.cancelled,
            "failed": job.failed,
            "priority": job.priority,
            "queue_position": self.engine.queue_position(job),
            "submitted_at": iso_timestamp(job.submitted_at),
            "started_at": _maybe_iso(job.started_at),
            "ended_at": _maybe_iso(job.ended_at),
            "expires_at": _maybe_iso(job.expires_at),
            "outcome": job.outcome.to_json(),
            "seed": extras.seed if extras else None,
            "headers": redact_headers(extras.headers.items()) if extras else {},
            "webhook": redact_url(extras.webhook) if extras else None,
        }

    # -- webhooks ------------------------------------------------------------------

    def webhooks_due(self) -> bool:
        """Cheap: is a webhook delivery due now (jobs brought up to date first)?"""
        self._catch_up_webhooks()
        return self.webhooks.has_due()

    def deliver_webhooks(self) -> list[Attempt]:
        """Send every due webhook and wait for the answers (failures are retried
        later, with backoff); the attempts made."""
        self._catch_up_webhooks()
        return self.webhooks.deliver_due()

    def start_webhooks(self) -> None:
        """Hand every due webhook to the senders without waiting for answers (the
        server's worker: a stalled receiver delays no other delivery)."""
        self._catch_up_webhooks()
        self.webhooks.start_due()

    def stop_webhook_senders(self) -> None:
        """Stop the webhook senders (a server shutting down): deliveries not
        started yet are dropped, the ones in flight end with their receivers."""
        self.webhooks.close()

    def webhook_jwks(self) -> dict[str, Any]:
        """The public key set webhooks are signed with."""
        return self.webhooks.signer.jwks()

    @property
    def webhook_attempts(self) -> list[Attempt]:
        """Every webhook delivery attempt so far, oldest first."""
        return self.webhooks.attempts

    def pending_webhooks(self) -> list[dict[str, Any]]:
        """The deliveries scheduled and not yet made (JSON, as the control API lists them)."""
        return self.webhooks.pending()

    def route_webhooks(self, transport: httpx.BaseTransport | None) -> None:
        """Deliver every webhook through `transport` (an in-process app), whatever
        its URL's host; None sends them over the network again."""
        self.webhooks.route_to(transport)

    def forge_webhook(
        self, url: str, body: bytes, *, request_id: str, user_id: str, tamper: Tamper
    ) -> Attempt:
        """Send a webhook fal would never send (`tamper` says how it is wrong), now."""
        return self.webhooks.send(url, body, request_id=request_id, user_id=user_id, tamper=tamper)

    # -- reads and waits for the HTTP layer -------------------------------------------

    def job(self, request_id: str, tenant: str | None = None) -> Job | None:
        """A live job by id (only when it is `tenant`'s, if given); None when
        unknown or expired."""
        return self.engine.get(request_id, tenant)

    def jobs(self) -> list[Job]:
        """Every live job, oldest first."""
        return self.engine.jobs()

    @property
    def job_count(self) -> int:
        """Jobs held (expired ones not yet purged included)."""
        return len(self.engine)

    def next_event_at(self, app_id: str) -> float:
        """When the next start, end or missed deadline in `app_id`'s queue happens
        (infinity if none is due): until then, unless a change is signalled, no
        job of that app changes."""
        return self.engine.next_event_at(app_id)

    async def wait_for_change(self, timeout: float) -> bool:
        """Wait until some job changes (True) or `timeout` real seconds pass (False)."""
        return await self.engine.changed.wait(timeout)

    # -- faults ----------------------------------------------------------------------

    def take_fault(self, action: str, endpoint_id: str | None) -> Fault | None:
        """The planned fault a request (`action` on `endpoint_id`) gets instead of
        its answer, used up by this call; None for a normal answer."""
        return self.faults.take(action, endpoint_id)

    def pending_faults(self) -> list[Fault]:
        """The faults planned and not used up yet."""
        return self.faults.pending()

    def clear_faults(self) -> None:
        """Drop every planned fault."""
        self.faults.clear()

    # -- engine hooks ----------------------------------------------------------------

    def _complete(self, job: Job) -> int:
        """Fill a successful job's result (media registered); returns its size."""
        if job.outcome.output is not None:  # scripted by the test, checked when scripted
            job.result = compact_json(job.outcome.output)
            return len(job.result)
        size = self._generate(job)
        if job.outcome.merge is not None:
            assert isinstance(job.result, bytes)
            job.result = compact_json({**json.loads(job.result), **job.outcome.merge})
            size = len(job.result)
        return size

    def _generate(self, job: Job) -> int:
        """The generated result of a successful job; returns its size."""
        model = self.catalog.get(job.endpoint_id) or self._generic.get(job.endpoint_id)
        extras = self._extras.get(job.id)
        if model is None or extras is None or not isinstance(job.payload, dict):
            job.result = b"{}"
            return 2
        if extras.recorded is not None:
            return self._replay(job, model, extras)
        if model.output == "synthesized":
            sink = _JobMedia(self, job, extras.base_url)
            output = model.synthesize(job.payload, extras.seed, sink, job.run_seconds)
            job.result = compact_json(output)
            return len(job.result)
        specs = model.media_specs(job.payload, extras.seed)
        urls = [self._register(job, spec, extras.base_url) for spec in specs]
        sizes = [media_size(spec) if spec.kind == "video" else 0 for spec in specs]
        output = model.build_output(job.payload, extras.seed, urls, specs, job.run_seconds, sizes)
        job.result = compact_json(output)
        return len(job.result)

    def _register(self, job: Job, spec: MediaSpec, base_url: str) -> str:
        """Serve `spec` as one of `job`'s files (built on first download); its URL."""
        token = self._media_token(job)
        self._media[token] = spec
        job.media = (*job.media, token)
        bucket = _BUCKETS[spec.seed % len(_BUCKETS)]
        ext = spec.file_name.rsplit(".", 1)[-1]
        return f"{base_url.rstrip('/')}/files/{bucket}/{token}.{ext}"

    def _replay(self, job: Job, model: Model, extras: _JobExtras) -> int:
        """The recorded answer for a recorded input: its output, its media bytes
        (served from this mock, under fresh URLs)."""
        assert extras.recorded is not None
        files = model.recorded_media(extras.recorded)
        output = copy.deepcopy(model.examples[extras.recorded]["output"])
        for item in media_objects(output):
            stored = files.get(item["url"])
            if stored is None:
                continue  # a URL that was not recorded stays as it was
            token = self._media_token(job)
            content_type = str(item.get("content_type") or "application/octet-stream")
            self._media[token] = RecordedFile(str(stored), content_type)
            job.media = (*job.media, token)
            suffix = stored.suffix
            item["url"] = f"{extras.base_url.rstrip('/')}/files/recorded/{token}{suffix}"
        job.result = compact_json(output)
        return len(job.result)

    def _media_token(self, job: Job) -> str:
        """The name of `job`'s next media file: unguessable without the store's
        key, and the same in every replica that builds the job's result."""
        digest = hashlib.blake2b(
            f"{job.id}/{len(job.media)}".encode(), key=self._media_key, digest_size=15
        ).digest()
        return base64.urlsafe_b64encode(digest).decode()

    def _created(self, job: Job, extras: _JobExtras) -> None:
        self._extras[job.id] = extras
        if extras.webhook:
            self._webhook_jobs.expect(job.id, extras.webhook)

    def _catch_up_webhooks(self) -> None:
        # The engine replays time lazily: a job ends (and its webhook is queued)
        # only when something syncs it. The delivery worker asks 20 times a
        # second, so sync only while a job with a webhook is still running.
        # A replica first learns what the others did (its jobs may end there).
        self.store.refresh()
        if self._webhook_jobs.awaiting:
            self.engine.sync()

    def _purge(self, job: Job) -> None:
        self._final_status.pop(job.id, None)
        for token in job.media:
            self._media.pop(token, None)
        self._extras.pop(job.id, None)

    def _durations(self, model: Model, outcome: Outcome) -> tuple[float, float]:
        config = self.config
        if config.instant:
            queue_s, run_s = 0.0, 0.0
        else:
            queue_s = _first(config.queue_seconds, model.queue_seconds, DEFAULT_QUEUE_SECONDS)
            run_s = _first(config.run_seconds, model.run_seconds, DEFAULT_RUN_SECONDS)
        # An outcome's own timing (a "slow" run) wins even in instant mode.
        return _first(outcome.queue_seconds, queue_s), _first(outcome.run_seconds, run_s)

    def log_body(self, raw: bytes, parsed: Any) -> Any:
        """What the request log keeps of a body (large ones are summarised)."""
        if len(raw) > _MAX_LOGGED_BODY:
            return {"_truncated": True, "size": len(raw)}
        return parsed

    def endpoint_of(self, app_or_endpoint: str) -> str | None:
        """Normalise an endpoint id for logs (None when it is not one)."""
        try:
            return str(EndpointId.parse(app_or_endpoint))
        except InvalidEndpointId:
            return None


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return value
    return 0.0


def _maybe_iso(value: float | None) -> str | None:
    return iso_timestamp(value) if value is not None else None


def _priority(value: str | None) -> Priority:
    priority = parse_priority(value)
    if priority is None:
        raise InvalidInput.one(
            ["header", PRIORITY_HEADER.lower()],
            f"Input should be {' or '.join(repr(p) for p in PRIORITIES)}",
            "enum",
        )
    return priority


def _timeout(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86400:
        raise InvalidInput.one(
            ["header", "x-fal-request-timeout"],
            "Input should be a number of seconds greater than 0",
            "float_parsing",
        )
    return seconds


def _shared_signer(key: bytes) -> WebhookSigner:
    """The webhook key pair every replica derives from the store's shared key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = hashlib.blake2b(b"webhook signing key", key=key, digest_size=32).digest()
    return WebhookSigner(Ed25519PrivateKey.from_private_bytes(seed))


class _SharedFaults(FaultPlan):
    """A replica's fault plan: adding, using up and clearing go through the store,
    so a fault planned on one replica is used once, by whichever gets the request."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    def add(self, fault: Fault) -> Fault:
        """Plan `fault` on every replica."""
        self._store.commit("fault_add", (fault,))
        return fault

    def take(self, action: str, endpoint: str | None) -> Fault | None:
        """The first fault matching this request, used up on every replica."""
        if not self.pending():  # the hot path: no fault, no round trip
            return None
        taken: Fault | None = self._store.commit("fault_take", (action, endpoint))
        return taken

    def clear(self) -> None:
        """Forget every planned fault, on every replica."""
        self._store.commit("fault_clear", ())


class _SharedUploads(UploadStore):
    """A replica's uploads: each file is stored by every replica, under one name."""

    def __init__(self, store: Store, clock: Clock, *, ttl: float) -> None:
        super().__init__(clock, ttl=ttl, secret=store.secret)
        self._store = store

    def store(
        self, data: bytes, content_type: str, file_name: str | None, *, name: str | None = None
    ) -> str:
        """Keep an upload on every replica; returns its name under /files/."""
        if name is None:
            name = new_name(content_type, file_name)
        stored: str = self._store.commit("upload", (data, content_type, file_name, name))
        return stored


class _JobMedia:
    """The `MediaSink` of one job's synthesized output: files served by the mock."""

    def __init__(self, mock: FalMock, job: Job, base_url: str) -> None:
        self._mock, self._job, self._base_url = mock, job, base_url

    def url(self, spec: MediaSpec) -> str:
        """Register the file with the job; its download URL."""
        return self._mock._register(self._job, spec, self._base_url)

    def size(self, spec: MediaSpec) -> int:
        """The file's true size (built now, and cached for its download)."""
        return media_size(spec)
