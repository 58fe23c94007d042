"""The reference client and the mock, driven together by Hypothesis.

A `RuleBasedStateMachine` submits to any catalog model (inputs drawn from its
JSON Schema), polls, streams, fetches results and media, cancels, moves the
clock, scripts failures and injects transport faults, in both profiles.
The model of the world on `self` is small: what each request was, what was
last seen of it, and which faults were injected. Failures shrink to a short
program of these rules.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import jsonschema
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)
from hypothesis_jsonschema import from_schema

from mockserver import (
    INTERMEDIARY,
    OFFICIAL,
    Catalog,
    FalMock,
    Fault,
    ManualClock,
    MockConfig,
    Outcome,
    Profile,
    create_app,
)
from mockserver.client import (
    AsyncFalClient,
    ClientSettings,
    Completed,
    FalClient,
    FalError,
    FalHTTPError,
    FalTransportError,
    FalValidationError,
    InProgress,
    Queued,
    QueueHandle,
    Status,
)
from mockserver.client.protocol import AuthScheme
from mockserver.endpoints import EndpointId, parse_request_path
from mockserver.faults import FaultAction
from mockserver.outputs import media_objects
from mockserver.transport import AppTransport, SyncAppTransport

CATALOG = Catalog.load()
MODELS = list(CATALOG)
ENDPOINTS = [m.endpoint_id for m in MODELS]
BASE = "http://127.0.0.1:8000"
RANK = {Queued: 0, InProgress: 1, Completed: 2}
DROPPED = object()
STEPS = int(os.environ.get("STATEFUL_STEPS", "25"))


def _renderable(data: dict[str, Any]) -> bool:
    # Keep drawn inputs to images the mock renders quickly (it renders real pixels).
    size = data.get("image_size")
    return not (
        isinstance(size, dict) and size.get("width", 0) * size.get("height", 0) > 1024 * 1024
    )


def strategy_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a JSON Schema accepts. Objects and unions are built here, leaves
    come from hypothesis-jsonschema (its own object generation relies on
    Hypothesis internals that changed, so it is not used for objects)."""
    if "anyOf" in schema:
        return st.one_of([strategy_for(option) for option in schema["anyOf"]])
    if schema.get("type") == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: strategy_for(sub) for name, sub in properties.items() if name in required},
            optional={
                name: strategy_for(sub) for name, sub in properties.items() if name not in required
            },
        )
    if schema.get("type") == "array":  # arrays of objects (LoRAs, shots) are built here too
        low = int(schema.get("minItems", 0))
        high = min(int(schema.get("maxItems", low + 2)), low + 2)
        return st.lists(strategy_for(schema.get("items", {})), min_size=low, max_size=high)
    leaf = {k: v for k, v in schema.items() if k not in ("default", "description")}
    return from_schema(leaf)


INPUTS = {m.endpoint_id: strategy_for(m.input_schema).filter(_renderable) for m in MODELS}


@dataclass
class Tracked:
    """What the test knows about one submitted request."""

    handle: QueueHandle
    endpoint_id: str
    payload: dict[str, Any]
    rank: int = 0
    position: int | None = None
    cancelled: bool = False
    failed: bool = False
    expired: bool = False
    completed: bool = False


class QueueMachine(RuleBasedStateMachine):
    """Client and mock must agree on every sequence of operations."""

    profile: ClassVar[Profile] = OFFICIAL
    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.mock = FalMock(
            MockConfig(profile=self.profile, runners=2), clock=self.clock, catalog=CATALOG
        )
        app = create_app(self.mock)
        scheme: AuthScheme = "Bearer" if self.profile.auth_scheme == "Bearer" else "Key"
        self.settings = ClientSettings(
            base_url=BASE, key="machine-key", auth_scheme=scheme, max_retries=2
        )
        self.transport = SyncAppTransport(app)
        self.client = FalClient(self.settings, transport=self.transport, sleep=lambda seconds: None)
        self.loop = asyncio.new_event_loop()
        self.async_client = AsyncFalClient(
            self.settings, transport=AppTransport(app), sleep=self._async_noop
        )
        self.tracked: list[Tracked] = []
        self.injected_5xx = 0
        self.injected_drops = 0
        self.infra_failed: set[str] = set()
        self.seen_drops = 0
        self.scripted_failures = 0

    @staticmethod
    async def _async_noop(seconds: float) -> None:
        return None

    def teardown(self) -> None:
        self.client.close()
        self.transport.close()
        self.loop.run_until_complete(self.async_client.aclose())
        self.loop.close()

    # -- helpers ---------------------------------------------------------------------

    def _call(self, action: Any) -> Any:
        """Run a client call; a transport error (counted: the invariants check
        it was injected) gives DROPPED. Any other exception than the client's
        typed ones fails the test."""
        try:
            return action()
        except FalTransportError:
            self.seen_drops += 1
            return DROPPED

    def _observe(self, item: Tracked, status: Status) -> None:
        rank = RANK[type(status)]
        assert rank >= item.rank, f"status went backwards: {item.rank} -> {rank}"
        item.rank = rank
        if isinstance(status, Queued):
            assert item.position is None or status.position <= item.position, "queue_position grew"
            assert status.position >= 0
            item.position = status.position
        if isinstance(status, Completed):
            item.completed = True
            item.failed = status.error is not None

    def _check_output(self, item: Tracked, output: dict[str, Any]) -> None:
        model = CATALOG.get(item.endpoint_id)
        assert model is not None
        jsonschema.validate(output, model.output_schema)
        if model.output == "images":
            filled = model.with_defaults(item.payload)
            assert len(output["images"]) == filled.get("num_images", 1)
            expected = model.size_for(filled)
            assert {(i["width"], i["height"]) for i in output["images"]} == {expected}
            assert len(output["has_nsfw_concepts"]) == len(output["images"])
        elif isinstance(output.get("images"), list) and "num_images" in item.payload:
            assert len(output["images"]) == item.payload["num_images"]  # synthesized outputs
        if "seed" in item.payload and "seed" in model.output_schema.get("properties", {}):
            assert output["seed"] == item.payload["seed"]

    # -- rules -----------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        assert self.mock.engine.jobs() == []

    @rule(
        target=requests,
        data=st.data(),
        endpoint=st.sampled_from(ENDPOINTS),
        priority=st.sampled_from([None, "normal", "low"]),
    )
    def submit(self, data: st.DataObject, endpoint: str, priority: str | None) -> Tracked:
        model = CATALOG.get(endpoint)
        assert model is not None
        payload = data.draw(INPUTS[endpoint], label="input")
        placeholder = Tracked(
            handle=self.client.handle(endpoint, "00000000-0000-4000-8000-000000000000"),
            endpoint_id=endpoint,
            payload=payload,
            expired=True,
        )
        try:
            handle = self._call(lambda: self.client.submit(endpoint, payload, priority=priority))
        except FalHTTPError as error:
            # a valid input is refused only by an injected fault (5xx, or 429 past retries)
            assert error.status_code is not None and error.status_code >= 429, error
            return placeholder
        if handle is DROPPED:
            return placeholder
        item = Tracked(
            handle=handle, endpoint_id=endpoint, payload=payload, position=handle.queue_position
        )
        self.tracked.append(item)
        return item

    @rule(
        endpoint=st.sampled_from(ENDPOINTS),
        field=st.sampled_from(["num_images", "seed", "prompt", "nonexistent"]),
        value=st.sampled_from([-1, "x", 10**9, None, [], 99]),
    )
    def submit_invalid(self, endpoint: str, field: str, value: Any) -> None:
        model = CATALOG.get(endpoint)
        assert model is not None
        payload = {field: value}
        issues = model.validate(payload)
        try:
            answer = self._call(lambda: self.client.submit(endpoint, payload))
        except FalHTTPError as error:
            if isinstance(error, FalValidationError):
                assert issues, "the mock rejected an input its schema accepts"
                assert sorted(error.fields) == sorted(str(i.loc[0]) for i in issues if i.loc)
                return
            assert error.status_code is not None and error.status_code >= 429  # injected
            return
        assert answer is DROPPED or not issues, "an input that violates the schema was accepted"

    @rule(item=requests, with_logs=st.booleans())
    def poll(self, item: Tracked, with_logs: bool) -> None:
        if item.expired:
            return
        try:
            status = self._call(lambda: self.client.status(item.handle, with_logs=with_logs))
        except FalHTTPError as error:
            if error.status_code == 404:
                item.expired = True
                return
            assert error.status_code is not None and error.status_code >= 429
            return
        if status is DROPPED:
            return
        self._observe(item, status)
        if not with_logs:
            assert status.logs is None if not isinstance(status, Queued) else True

    @rule(item=requests)
    def fetch_result(self, item: Tracked) -> None:
        if item.expired:
            return
        try:
            status = self._call(lambda: self.client.status(item.handle))
        except FalHTTPError as error:
            item.expired = error.status_code == 404 or item.expired
            return
        if status is DROPPED:
            return
        self._observe(item, status)
        try:
            output = self._call(lambda: self.client.result(item.handle))
        except FalHTTPError as error:
            if error.status_code is not None and error.status_code >= 500 and not item.failed:
                return  # injected
            if not isinstance(status, Completed):
                assert error.status_code == 400, "a result before completion must be a 400"
            elif item.cancelled:
                assert error.status_code == 499
            else:
                assert item.failed, f"completed run without output: {error}"
            return
        if output is DROPPED:
            return
        assert isinstance(status, Completed) and not item.cancelled and not item.failed
        self._check_output(item, output)

    @rule(item=requests)
    def fetch_media(self, item: Tracked) -> None:
        if item.expired or not item.completed or item.cancelled or item.failed:
            return
        try:
            output = self._call(lambda: self.client.result(item.handle))
        except FalHTTPError:
            return
        if output is DROPPED:
            return
        with tempfile.TemporaryDirectory() as directory:
            saved = self.client.save(output, directory)
            # Text models (LLMs, speech to text) answer without files.
            assert saved or not list(media_objects(output)), "media files not saved"
            assert all(path.stat().st_size > 0 for path in saved)

    @rule(item=requests)
    def cancel(self, item: Tracked) -> None:
        if item.expired:
            return
        try:
            answer = self._call(lambda: self.client.cancel(item.handle))
        except FalHTTPError as error:
            item.expired = item.expired or error.status_code == 404
            return
        if answer is DROPPED:
            return
        if item.completed:
            assert answer == "ALREADY_COMPLETED"
        if answer == "CANCELLATION_REQUESTED":
            item.cancelled = True

    @rule(item=requests)
    def stream(self, item: Tracked) -> None:
        if item.expired:
            return
        statuses = self.loop.run_until_complete(self._stream_to_the_end(item))
        if statuses is None:
            return
        assert isinstance(statuses[-1], Completed)
        for status in statuses:
            self._observe(item, status)

    async def _stream_to_the_end(self, item: Tracked) -> list[Status] | None:
        async def collect() -> list[Status]:
            return [s async for s in self.async_client.stream_status(item.handle, with_logs=True)]

        task = asyncio.ensure_future(collect())
        for _ in range(2000):  # bounded: ~1000 s of mock time at most
            for _ in range(20):
                await asyncio.sleep(0)
            if task.done():
                break
            self.clock.advance(0.5)
        try:
            return await asyncio.wait_for(task, timeout=5)
        except FalError as error:
            assert isinstance(error, FalHTTPError) and error.status_code == 404
            item.expired = True
            return None

    # Mostly steps shorter than a run, so every state gets seen; sometimes
    # long jumps, so results expire.
    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0]) | st.sampled_from([5.0, 400.0, 3600.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(
        code=st.sampled_from([429, 502, 503, 504]),
        action=st.sampled_from(["status", "result", "submit", "cancel"]),
    )
    def inject_status_fault(self, code: int, action: str) -> None:
        self.mock.add_fault(
            Fault(
                status_code=code,
                retry_after=0.0 if code == 429 else None,
                action=cast(FaultAction, action),
            )
        )
        if code >= 500:
            self.injected_5xx += 1

    @rule(action=st.sampled_from(["status", "result", "cancel"]))
    def inject_latency(self, action: str) -> None:
        # real (not mock) time: the network is slow, the answer must still be right
        self.mock.add_fault(Fault(latency=0.01, action=cast(FaultAction, action)))

    @rule(action=st.sampled_from(["status", "result", "submit"]))
    def inject_drop(self, action: str) -> None:
        self.mock.add_fault(Fault(drop=True, action=cast(FaultAction, action)))
        self.injected_drops += 1

    @rule(endpoint=st.sampled_from(ENDPOINTS), kind=st.sampled_from(["model_error", "infra_error"]))
    def script_failure(self, endpoint: str, kind: str) -> None:
        outcome = (
            Outcome.model_error()
            if kind == "model_error"
            else Outcome.infra_error("runner_disconnected")
        )
        self.mock.next_outcome(endpoint, outcome)

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def urls_are_well_formed_and_on_the_base(self) -> None:
        for item in self.tracked:
            app_id = EndpointId.parse(item.endpoint_id).app_id
            for url, action in (
                (item.handle.response_url, "result"),
                (item.handle.status_url, "status"),
                (item.handle.cancel_url, "cancel"),
            ):
                assert url.startswith(BASE + "/"), url
                route = parse_request_path(url[len(BASE) :])
                assert route is not None and route.app_id == app_id and route.action == action, url
                assert route.request_id == item.handle.request_id

    @invariant()
    def statuses_never_go_backwards(self) -> None:
        for item in self.tracked[-6:]:  # the newest ones: keeps each step cheap
            if item.expired:
                continue
            try:
                status = self._call(lambda item=item: self.client.status(item.handle))
            except FalHTTPError as error:
                if error.status_code == 404:
                    item.expired = True
                continue
            if status is not DROPPED:
                self._observe(item, status)

    @invariant()
    def no_failure_that_was_not_injected(self) -> None:
        # Counted at the HTTP level (retries would hide them from the client):
        # every 5xx answer is an injected fault or a scripted infrastructure
        # error's result.
        self.infra_failed.update(
            job.id for job in self.mock.engine.jobs() if job.outcome.kind == "infra_error"
        )
        unexplained = [
            r
            for r in self.mock.requests
            if r.status_code >= 500
            and not (r.action == "result" and r.request_id in self.infra_failed)
        ]
        assert len(unexplained) <= self.injected_5xx, f"unexpected 5xx: {unexplained[-1]}"
        assert self.seen_drops <= self.injected_drops


class IntermediaryQueueMachine(QueueMachine):
    """The same, against the intermediary profile (Bearer, queue.fal.run URLs)."""

    profile = INTERMEDIARY


_examples = max(10, settings().max_examples // 3)
TestOfficialProfile = QueueMachine.TestCase
TestOfficialProfile.settings = settings(
    max_examples=_examples, stateful_step_count=STEPS, deadline=None
)
TestIntermediaryProfile = IntermediaryQueueMachine.TestCase
TestIntermediaryProfile.settings = settings(
    max_examples=_examples, stateful_step_count=STEPS, deadline=None
)
