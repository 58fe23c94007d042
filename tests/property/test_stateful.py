"""The reference client and the mock, driven together by Hypothesis.

A `RuleBasedStateMachine` submits to any catalog model (inputs drawn from its
JSON Schema), polls, streams, fetches results and media, cancels, moves the
clock, scripts failures and injects transport faults, in both profiles.
Several keys submit, and each
checks that the others cannot see its requests.
The model of the world on `self` is small: what each request was, what was
last seen of it, when it ended, and which faults were injected. Every check
names the README promise it enforces (`tests/property/promises.py`), so a
failure says which one broke. Failures shrink to a short program of these rules.
"""

from __future__ import annotations

import asyncio
import io
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast

import httpx
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
from PIL import Image

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
    Retention,
    create_app,
)
from mockserver.check.exchange import Exchange
from mockserver.check.judge import media as media_judge
from mockserver.check.results import Verdict
from mockserver.client import (
    AsyncFalClient,
    ClientSettings,
    Completed,
    FalClient,
    FalError,
    FalHTTPError,
    FalProtocolError,
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
from mockserver.priority import Priority
from mockserver.transport import AppTransport, SyncAppTransport
from tests.property.promises import Promise, PromiseBroken, require

CATALOG = Catalog.load()
MODELS = list(CATALOG)
ENDPOINTS = [m.endpoint_id for m in MODELS]
BASE = "http://127.0.0.1:8000"
RANK = {Queued: 0, InProgress: 1, Completed: 2}
DROPPED = object()
STEPS = int(os.environ.get("STATEFUL_STEPS", "25"))
#: One retention for every result (large or not), so the machine knows when each
#: finished request must disappear: exactly `TTL` seconds after it ended.
TTL = 600.0
KEYS = ("machine-key-a", "machine-key-b")


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
    key: int = 0
    rank: int = 0
    position: int | None = None
    cancelled: bool = False
    failed: bool = False
    expired: bool = False
    completed: bool = False
    ended_at: float | None = None  # on the mock clock, once seen COMPLETED
    seen_unfinished_at: float | None = None  # the last time it was seen not COMPLETED


class QueueMachine(RuleBasedStateMachine):
    """Client and mock must agree on every sequence of operations."""

    profile: ClassVar[Profile] = OFFICIAL
    #: The models requests go to (every catalog model unless a subclass narrows it).
    endpoints: ClassVar[list[str]] = ENDPOINTS
    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        config = MockConfig(
            profile=self.profile, runners=2, retention=Retention(TTL, TTL, 10 * 1024)
        )
        self.clock, self.mock, self.transport, async_transport = self.serve(config)
        scheme: AuthScheme = "Bearer" if self.profile.auth_scheme == "Bearer" else "Key"
        self.clients = [
            FalClient(
                ClientSettings(base_url=BASE, key=key, auth_scheme=scheme, max_retries=2),
                transport=self.transport,
                sleep=lambda seconds: None,
            )
            for key in KEYS
        ]
        self.client = self.clients[0]
        # Media and the control API, read as any HTTP client would.
        self.http = httpx.Client(transport=self.transport, base_url=BASE)
        self.loop = asyncio.new_event_loop()
        self.async_client = AsyncFalClient(
            ClientSettings(base_url=BASE, key=KEYS[0], auth_scheme=scheme, max_retries=2),
            transport=async_transport,
            sleep=self._async_noop,
        )
        self.tracked: list[Tracked] = []
        self.injected_5xx = 0
        self.injected_drops = 0
        self.infra_failed: set[str] = set()
        self.seen_drops = 0
        self.scripted_failures = 0

    def serve(
        self, config: MockConfig
    ) -> tuple[ManualClock, FalMock, httpx.BaseTransport, httpx.AsyncBaseTransport]:
        """The mock under test on a manual clock: (clock, mock, transport, async
        transport). A subclass serves it otherwise (tests/replicas: three replicas)."""
        clock = ManualClock()
        mock = FalMock(config, clock=clock, catalog=CATALOG)
        app = create_app(mock)
        # shared: the app runs on this thread's loop, no hop to a loop thread per request
        return clock, mock, SyncAppTransport(app, shared=True), AppTransport(app)

    @staticmethod
    async def _async_noop(seconds: float) -> None:
        return None

    def teardown(self) -> None:
        for client in self.clients:
            client.close()
        self.http.close()
        self.transport.close()
        self.loop.run_until_complete(self.async_client.aclose())
        self.loop.close()

    # -- helpers ---------------------------------------------------------------------

    def _call(self, action: Any) -> Any:
        """Run a client call; a transport error (counted: the invariants check
        it was injected) gives DROPPED. An answer the client cannot read breaks
        the protocol; any other exception than the client's typed ones fails the test."""
        try:
            return action()
        except FalTransportError:
            self.seen_drops += 1
            return DROPPED
        except FalProtocolError as error:
            raise PromiseBroken(Promise.ANSWERS_FOLLOW_THE_PROTOCOL, str(error)) from error

    def _client_of(self, item: Tracked) -> FalClient:
        return self.clients[item.key]

    def _observe(self, item: Tracked, status: Status) -> None:
        rank = RANK[type(status)]
        require(
            rank >= item.rank,
            Promise.STATUS_NEVER_GOES_BACKWARDS,
            f"{item.handle.request_id}: {item.rank} -> {rank}",
        )
        item.rank = rank
        if isinstance(status, Queued):
            require(
                item.position is None or status.position <= item.position,
                Promise.POSITION_NEVER_GROWS,
                f"{item.position} -> {status.position}",
            )
            require(status.position >= 0, Promise.ANSWERS_FOLLOW_THE_PROTOCOL, "negative position")
            item.position = status.position
        if isinstance(status, Completed):
            item.completed = True
            item.failed = status.error is not None
            if item.ended_at is None:
                item.ended_at = self._ended_at(item)
        else:
            item.seen_unfinished_at = self.clock.now()

    def _ended_at(self, item: Tracked) -> float:
        """When the request ended, from the control API (which needs no key)."""
        answer = self.http.get(f"/_mock/jobs/{item.handle.request_id}")
        ended = answer.json()["ended_at"] if answer.status_code == 200 else None
        if not isinstance(ended, str):
            raise PromiseBroken(Promise.RESULT_KEPT_UNTIL_EXPIRY, f"a completed job: {answer}")
        return datetime.fromisoformat(ended).timestamp()

    def _gone(self, item: Tracked) -> None:
        """The request answered 404 to its own key: that is expiry, and only
        allowed once its retention has passed."""
        now = self.clock.now()
        if item.ended_at is not None:
            require(
                now >= item.ended_at + TTL,
                Promise.RESULT_KEPT_UNTIL_EXPIRY,
                f"gone {item.ended_at + TTL - now:.3f} s before its retention ends",
            )
        elif item.seen_unfinished_at is not None:
            require(
                now >= item.seen_unfinished_at + TTL,
                Promise.RESULT_KEPT_UNTIL_EXPIRY,
                "gone sooner than a retention after it was last seen unfinished",
            )
        item.expired = True

    def _check_urls(self, item: Tracked) -> None:
        app_id = EndpointId.parse(item.endpoint_id).app_id
        for url, action in (
            (item.handle.response_url, "result"),
            (item.handle.status_url, "status"),
            (item.handle.cancel_url, "cancel"),
        ):
            require(url.startswith(BASE + "/"), Promise.URLS_ON_THE_BASE, url)
            route = parse_request_path(url[len(BASE) :])
            require(
                route is not None
                and route.app_id == app_id
                and route.action == action
                and route.request_id == item.handle.request_id,
                Promise.URLS_ON_THE_BASE,
                url,
            )

    def _injected(self, error: FalHTTPError) -> bool:
        """An error an injected fault explains (429 past retries, or 5xx)."""
        return error.status_code is not None and error.status_code >= 429

    def _check_output(self, item: Tracked, output: dict[str, Any]) -> None:
        model = CATALOG.get(item.endpoint_id)
        assert model is not None
        try:
            jsonschema.validate(output, model.output_schema)
        except jsonschema.ValidationError as error:
            raise PromiseBroken(Promise.OUTPUT_VALIDATES, error.message) from error
        if model.output == "images":
            filled = model.with_defaults(item.payload)
            wanted = filled.get("num_images", 1)
            require(
                len(output["images"]) == wanted,
                Promise.NUM_IMAGES_HONOURED,
                f"{len(output['images'])} images for num_images={wanted}",
            )
            sizes = {(i["width"], i["height"]) for i in output["images"]}
            require(sizes == {model.size_for(filled)}, Promise.SIZE_HONOURED, f"{sizes}")
            require(
                len(output["has_nsfw_concepts"]) == len(output["images"]),
                Promise.OUTPUT_VALIDATES,
                "has_nsfw_concepts does not match the images",
            )
        elif isinstance(output.get("images"), list) and "num_images" in item.payload:
            wanted = item.payload["num_images"]  # synthesized outputs
            require(
                len(output["images"]) == wanted,
                Promise.NUM_IMAGES_HONOURED,
                f"{len(output['images'])} images for num_images={wanted}",
            )
        seed = item.payload.get("seed")
        if isinstance(seed, int) and "seed" in model.output_schema.get("properties", {}):
            require(
                output["seed"] == item.payload["seed"],
                Promise.SEED_HONOURED,
                f"asked {item.payload['seed']}, got {output.get('seed')}",
            )

    def _check_media(self, item: Tracked, output: dict[str, Any]) -> None:
        """Download every media file and compare its bytes with what the output says."""
        model = CATALOG.get(item.endpoint_id)
        assert model is not None
        wanted_format = model.with_defaults(item.payload).get("output_format")
        # Text models (LLMs, speech to text) answer without files.
        for media in media_objects(output):
            answer = self.http.get(media["url"])
            if answer.status_code >= 500 or answer.status_code == 429:
                continue  # an injected fault on the media path is not ours to judge
            require(
                answer.status_code == 200 and answer.content,
                Promise.MEDIA_MATCHES_OUTPUT,
                f"{media['url']} -> {answer.status_code}, {len(answer.content)} bytes",
            )
            served = answer.headers.get("content-type", "").split(";")[0]
            require(
                served == media["content_type"],
                Promise.MEDIA_MATCHES_OUTPUT,
                f"served as {served}, reported {media['content_type']}",
            )
            if media["content_type"].startswith(("audio/", "video/")):
                # What live mode reads from the header: readable, and as long
                # (and for a video as large) as the output reports.
                fetched = [(media, Exchange("GET", media["url"], 200, {}, answer.content))]
                read = media_judge.read(fetched)
                for finding in (media_judge.sizes(read), media_judge.durations(read)):
                    require(
                        finding is None or finding.verdict is not Verdict.FAIL,
                        Promise.MEDIA_MATCHES_OUTPUT,
                        finding.reason if finding else "",
                    )
                continue
            if not media["content_type"].startswith("image/"):
                continue
            picture = Image.open(io.BytesIO(answer.content))
            real_type = Image.MIME.get(picture.format or "", "?")
            require(
                real_type == media["content_type"],
                Promise.MEDIA_MATCHES_OUTPUT,
                f"the bytes are {real_type}, reported {media['content_type']}",
            )
            if "width" in media:
                require(
                    picture.size == (media["width"], media["height"]),
                    Promise.MEDIA_MATCHES_OUTPUT,
                    f"{picture.size} pixels, reported {media['width']}x{media['height']}",
                )
            if wanted_format is not None and model.output == "images":
                require(
                    real_type == f"image/{wanted_format}",
                    Promise.OUTPUT_FORMAT_HONOURED,
                    f"output_format {wanted_format}, the bytes are {real_type}",
                )

    # -- rules -----------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        assert self.mock.engine.jobs() == []

    @rule(
        target=requests,
        data=st.data(),
        priority=st.sampled_from([None, "normal", "low"]),
        key=st.sampled_from(range(len(KEYS))),
    )
    def submit(self, data: st.DataObject, priority: Priority | None, key: int) -> Tracked:
        endpoint = data.draw(st.sampled_from(self.endpoints), label="endpoint")
        model = CATALOG.get(endpoint)
        assert model is not None
        payload = data.draw(INPUTS[endpoint], label="input")
        client = self.clients[key]
        placeholder = Tracked(
            handle=client.handle(endpoint, "00000000-0000-4000-8000-000000000000"),
            endpoint_id=endpoint,
            payload=payload,
            key=key,
            expired=True,
        )
        try:
            handle = self._call(lambda: client.submit(endpoint, payload, priority=priority))
        except FalHTTPError as error:
            # a valid input is refused only by an injected fault (5xx, or 429 past retries)
            require(
                self._injected(error), Promise.INPUT_VALIDATION, f"valid input refused: {error}"
            )
            return placeholder
        if handle is DROPPED:
            return placeholder
        item = Tracked(
            handle=handle,
            endpoint_id=endpoint,
            payload=payload,
            key=key,
            position=handle.queue_position,
            seen_unfinished_at=self.clock.now(),
        )
        self._check_urls(item)  # before anything follows them
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
                require(issues, Promise.INPUT_VALIDATION, "a valid input was rejected")
                require(
                    sorted(error.fields) == sorted(str(i.loc[0]) for i in issues if i.loc),
                    Promise.INPUT_VALIDATION,
                    f"the 422 names {error.fields}",
                )
                return
            require(self._injected(error), Promise.INPUT_VALIDATION, f"{error}")
            return
        require(
            answer is DROPPED or not issues,
            Promise.INPUT_VALIDATION,
            "an input that violates the schema was accepted",
        )

    @rule(item=requests, with_logs=st.booleans())
    def poll(self, item: Tracked, with_logs: bool) -> None:
        if item.expired:
            return
        client = self._client_of(item)
        try:
            status = self._call(lambda: client.status(item.handle, with_logs=with_logs))
        except FalHTTPError as error:
            if error.status_code == 404:
                self._gone(item)
                return
            require(self._injected(error), Promise.NO_UNINJECTED_FAILURE, f"{error}")
            return
        if status is DROPPED:
            return
        self._observe(item, status)
        if not with_logs and not isinstance(status, Queued):
            require(
                status.logs is None,
                Promise.ANSWERS_FOLLOW_THE_PROTOCOL,
                "logs sent although not asked for",
            )

    @rule(item=requests)
    def fetch_result(self, item: Tracked) -> None:
        if item.expired:
            return
        client = self._client_of(item)
        try:
            status = self._call(lambda: client.status(item.handle))
        except FalHTTPError as error:
            if error.status_code == 404:
                self._gone(item)
            return
        if status is DROPPED:
            return
        self._observe(item, status)
        try:
            output = self._call(lambda: client.result(item.handle))
        except FalHTTPError as error:
            if self._injected(error) and not item.failed:
                return  # injected (the invariant below counts every 5xx)
            if not isinstance(status, Completed):
                require(
                    error.status_code == 400,
                    Promise.NO_RESULT_BEFORE_COMPLETION,
                    f"a result before completion must be a 400, got {error.status_code}",
                )
            elif item.cancelled:
                require(
                    error.status_code == 499 or self._injected(error),
                    Promise.CANCELLED_NEVER_YIELDS_OUTPUT,
                    f"{error.status_code}",
                )
            else:
                require(
                    item.failed, Promise.RESULT_KEPT_UNTIL_EXPIRY, f"completed, no output: {error}"
                )
            return
        if output is DROPPED:
            return
        require(
            isinstance(status, Completed),
            Promise.NO_RESULT_BEFORE_COMPLETION,
            "an output before COMPLETED",
        )
        require(not item.cancelled, Promise.CANCELLED_NEVER_YIELDS_OUTPUT, "output after cancel")
        require(not item.failed, Promise.ANSWERS_FOLLOW_THE_PROTOCOL, "a failed run with output")
        self._check_output(item, output)
        self._check_media(item, output)

    @rule(item=requests)
    def cancel(self, item: Tracked) -> None:
        if item.expired:
            return
        try:
            answer = self._call(lambda: self._client_of(item).cancel(item.handle))
        except FalHTTPError as error:
            if error.status_code == 404:
                self._gone(item)
            return
        if answer is DROPPED:
            return
        if item.completed:
            require(answer == "ALREADY_COMPLETED", Promise.ANSWERS_FOLLOW_THE_PROTOCOL, f"{answer}")
        if answer == "CANCELLATION_REQUESTED":
            item.cancelled = True

    @rule(item=requests, action=st.sampled_from(["status", "result", "cancel"]))
    def another_key_looks(self, item: Tracked, action: str) -> None:
        if item.expired:
            return
        other = self.clients[(item.key + 1) % len(self.clients)]

        def call() -> Any:
            if action == "status":
                return other.status(item.handle)
            if action == "result":
                return other.result(item.handle)
            return other.cancel(item.handle)

        try:
            answer = self._call(call)
        except FalHTTPError as error:
            require(
                error.status_code == 404 or self._injected(error),
                Promise.KEYS_ARE_ISOLATED,
                f"another key's {action} got {error.status_code}",
            )
            return
        require(
            answer is DROPPED,
            Promise.KEYS_ARE_ISOLATED,
            f"another key's {action} was answered: {answer!r}",
        )

    @rule(item=requests)
    def stream(self, item: Tracked) -> None:
        if item.expired or item.key != 0:
            return  # the async client holds the first key
        statuses = self.loop.run_until_complete(self._stream_to_the_end(item))
        if statuses is None:
            return
        require(
            isinstance(statuses[-1], Completed),
            Promise.ANSWERS_FOLLOW_THE_PROTOCOL,
            "a stream ended before COMPLETED",
        )
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
        except FalProtocolError as error:
            raise PromiseBroken(Promise.ANSWERS_FOLLOW_THE_PROTOCOL, str(error)) from error
        except FalError as error:
            require(
                isinstance(error, FalHTTPError) and error.status_code == 404,
                Promise.NO_UNINJECTED_FAILURE,
                f"{error!r}",
            )
            # the stream outlived the request: it ended while the clock moved
            item.expired = True
            return None

    # Mostly steps shorter than a run, so every state gets seen; sometimes
    # long jumps, so results expire.
    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0]) | st.sampled_from([5.0, 400.0, 3600.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(item=requests, at_the_end=st.booleans())
    def advance_to_retention_end(self, item: Tracked, at_the_end: bool) -> None:
        """Stop the clock exactly at the end of a request's retention, or just before."""
        if item.expired or item.ended_at is None:
            return
        target = item.ended_at + TTL - (0.0 if at_the_end else 0.001)
        if target > self.clock.now():
            self.clock.set(target)

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
            self._check_urls(item)

    @invariant()
    def statuses_never_go_backwards(self) -> None:
        for item in self.tracked[-3:]:  # the newest ones: keeps each step cheap
            if item.expired:
                continue
            client = self._client_of(item)
            try:
                status = self._call(lambda item=item, client=client: client.status(item.handle))
            except FalHTTPError as error:
                if error.status_code == 404:
                    self._gone(item)
                continue
            if status is not DROPPED:
                self._observe(item, status)

    @invariant()
    def a_finished_request_exists_exactly_until_its_retention_ends(self) -> None:
        now = self.clock.now()
        for item in self.tracked:
            if item.expired or item.ended_at is None or now < item.ended_at + TTL:
                continue
            try:
                answer = self._call(lambda item=item: self._client_of(item).status(item.handle))
            except FalHTTPError as error:
                if error.status_code == 404:
                    item.expired = True
                    continue
                if self._injected(error):
                    continue
                answer = error
            if answer is DROPPED:
                continue
            raise PromiseBroken(
                Promise.RESULT_EXPIRES,
                f"{item.handle.request_id} still answers {now - item.ended_at - TTL:.3f} s"
                f" after its retention ended: {answer!r}",
            )

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
        require(
            len(unexplained) <= self.injected_5xx,
            Promise.NO_UNINJECTED_FAILURE,
            f"unexpected 5xx: {unexplained[-1] if unexplained else ''}",
        )
        require(
            self.seen_drops <= self.injected_drops,
            Promise.NO_UNINJECTED_FAILURE,
            "a dropped connection that was not injected",
        )


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
