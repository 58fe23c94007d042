"""Run scenarios against a queue server and judge each step against the protocol."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from jsonschema import Draft202012Validator
from PIL import Image, UnidentifiedImageError

from mockserver.catalog import Model, preset_size
from mockserver.check import surface
from mockserver.check.http import Exchange, exchange
from mockserver.check.pacing import Deadline, Pacer, RealPacer, within
from mockserver.check.receiver import Delivery, WebhookReceiver
from mockserver.check.results import CheckResult, Outcome, Report
from mockserver.check.scenarios import Scenario, Step
from mockserver.client.protocol import AuthScheme
from mockserver.client.webhooks import WebhookVerificationError, verify_webhook
from mockserver.endpoints import EndpointId, origin_of, request_path, rewrite_url
from mockserver.outputs import media_objects
from mockserver.webhooks import FAL_JWKS_URL

_ORDER = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2}


@dataclass(frozen=True)
class Target:
    """The server under check. Keys never appear in its repr."""

    base_url: str
    key: str = field(repr=False)
    auth_scheme: AuthScheme = "Key"
    second_key: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What evidence must never show."""
        return tuple(k for k in (self.key, self.second_key) if k)

    def auth(self, kind: str = "ok") -> dict[str, str]:
        """The Authorization header for a kind of call (ok, none, wrong-key, ...)."""
        if kind == "none":
            return {}
        if kind == "wrong-key":
            return {"Authorization": f"{self.auth_scheme} fal-harness-wrong-{uuid.uuid4().hex}"}
        if kind == "wrong-scheme":
            other = "Bearer" if self.auth_scheme == "Key" else "Key"
            return {"Authorization": f"{other} {self.key}"}
        if kind == "second-key":
            return {"Authorization": f"{self.auth_scheme} {self.second_key}"}
        return {"Authorization": f"{self.auth_scheme} {self.key}"}


@dataclass(frozen=True)
class Settings:
    """How hard and how long to try."""

    concurrency: int = 8
    job_timeout: float = 120.0
    request_timeout: float = 30.0
    poll_interval: float = 0.5
    max_requests: int | None = None
    jwks_url: str = FAL_JWKS_URL


@dataclass(frozen=True)
class Planned:
    """One scenario on one endpoint, as the run plans it."""

    scenario: Scenario
    model: Model
    budgeted: bool  # False: over --max-requests, not run

    @property
    def label(self) -> str:
        """`scenario[endpoint]`."""
        return f"{self.scenario.id}[{self.model.endpoint_id}]"


def plan(scenarios: list[Scenario], models: list[Model], max_requests: int | None) -> list[Planned]:
    """Every (scenario, endpoint) pair to run, in order, within the spending cap."""
    planned: list[Planned] = []
    spent = 0
    for scenario in scenarios:
        for model in scenario.endpoints(models):
            cost = scenario.billable_submits
            fits = max_requests is None or spent + cost <= max_requests
            spent += cost if fits else 0
            planned.append(Planned(scenario, model, fits))
    return planned


class _Abort(Exception):
    """A step cannot go on; later steps are skipped. `ran`: the step itself ran
    (and reported why it stops), else it is listed as not run too."""

    def __init__(self, reason: str, *, ran: bool = False) -> None:
        super().__init__(reason)
        self.ran = ran


# The URLs a submit answer returns, and the protocol action each addresses.
_URL_ACTIONS = {"response": "result", "status": "status", "cancel": "cancel"}


@dataclass
class _Job:
    request_id: str
    urls: dict[str, str]  # response/status/cancel, rewritten onto the base
    final_status: dict[str, Any] | None = None  # the COMPLETED status, once seen
    result: dict[str, Any] | None = None

    @property
    def completed(self) -> bool:
        """A COMPLETED status was seen (polled or streamed)."""
        return self.final_status is not None


class Checker:
    """Runs planned scenarios concurrently and collects a `Report`."""

    def __init__(
        self,
        target: Target,
        client: httpx.AsyncClient,
        *,
        settings: Settings | None = None,
        pacer: Pacer | None = None,
        on_result: Callable[[CheckResult], None] | None = None,
        on_unit: Callable[[Planned], None] | None = None,
        receiver: WebhookReceiver | None = None,
    ) -> None:
        self.target = target
        self.client = client
        self.settings = settings or Settings()
        self.pacer: Pacer = pacer or RealPacer()
        self.on_result = on_result
        self.on_unit = on_unit
        self.receiver = receiver
        self._jwks: Exchange | None = None
        self._jwks_lock = asyncio.Lock()
        self.report = Report(target.base_url, target.auth_scheme)

    async def run(self, planned: list[Planned]) -> Report:
        """Run every planned pair (at most `concurrency` at a time)."""
        started = time.perf_counter()
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(item: Planned) -> None:
            async with gate:
                await _Unit(self, item).run()
            if self.on_unit is not None:
                self.on_unit(item)

        await asyncio.gather(*(one(item) for item in planned))
        self.report.seconds = time.perf_counter() - started
        return self.report

    async def jwks(self) -> Exchange:
        """The key set webhooks should verify with, fetched once per run."""
        async with self._jwks_lock:
            if self._jwks is None:
                self._jwks = await exchange(
                    self.client,
                    self.pacer,
                    self.settings.request_timeout,
                    "GET",
                    self.settings.jwks_url,
                )
            return self._jwks

    def add(self, result: CheckResult) -> None:
        """Record a result and tell the listener."""
        self.report.results.append(result)
        if self.on_result is not None:
            self.on_result(result)


class _Unit:
    """One scenario on one endpoint: its steps in order, sharing one job."""

    def __init__(self, checker: Checker, item: Planned) -> None:
        self.checker = checker
        self.target = checker.target
        self.settings = checker.settings
        self.pacer = checker.pacer
        self.scenario = item.scenario
        self.model = item.model
        self.budgeted = item.budgeted
        self.app_id = EndpointId.parse(self.model.endpoint_id).app_id
        self.input: dict[str, Any] = self.scenario.input_for(self.model)
        self.job: _Job | None = None
        self.hook = uuid.uuid4().hex  # this run's webhook path on the receiver

    # -- plumbing -----------------------------------------------------------

    def result(self, check: str, outcome: Outcome, reason: str, *exchanges: Exchange) -> None:
        secrets = self.target.secrets
        self.checker.add(
            CheckResult(
                self.scenario.id,
                self.model.endpoint_id,
                check,
                outcome,
                reason,
                tuple(e.evidence(secrets) for e in exchanges),
            )
        )

    async def call(
        self, method: str, url: str, *, auth: str = "ok", body: Any = None, billable: bool = False
    ) -> Exchange:
        """One request with the auth of `auth`; `billable` counts it against the cap."""
        answer = await exchange(
            self.checker.client,
            self.pacer,
            self.settings.request_timeout,
            method,
            url,
            headers=self.target.auth(auth),
            body=body,
        )
        if billable:
            self.checker.report.submits += 1
        return answer

    def need_job(self) -> _Job:
        if self.job is None:
            raise _Abort("no request was accepted by an earlier step")
        return self.job

    def need_completed(self) -> _Job:
        job = self.need_job()
        if not job.completed:
            raise _Abort("the request did not complete in an earlier step")
        return job

    async def run(self) -> None:
        steps = list(self.scenario.steps)
        if not self.budgeted:
            reason = f"not run: over --max-requests ({self.settings.max_requests})"
            self.result("budget", Outcome.SKIP, reason)
            return
        for index, step in enumerate(steps):
            try:
                await getattr(self, f"step_{step.kind}")(step)
            except _Abort as exc:
                # One finding, not one per step: the cause is what matters.
                rest = steps[index + 1 :] if exc.ran else steps[index:]
                if rest:
                    names = ", ".join(step.kind for step in rest)
                    self.result("not-run", Outcome.SKIP, f"{names} not run: {exc}")
                return

    # -- submit ------------------------------------------------------------------

    async def step_submit(self, step: Step) -> None:
        options = step.options
        payload = self.scenario.input_for(self.model, options.get("input"))
        self.input = payload
        auth = options.get("auth", "ok")
        url = f"{self.target.base_url.rstrip('/')}/{self.model.endpoint_id}"
        if options.get("webhook"):
            receiver = self.checker.receiver
            if receiver is None:
                raise _Abort("needs a webhook receiver (--webhook-listen; off by default)")
            url += "?" + urlencode({"fal_webhook": receiver.url_for(self.hook)})
        answer = await self.call("POST", url, auth=auth, body=payload, billable=step.billable)
        if auth != "ok":
            await self._judge_auth(auth, answer)
        elif options.get("invalid_fields"):
            await self._judge_validation(options["invalid_fields"], answer)
        else:
            self._judge_accepted(answer, check_urls=bool(options.get("urls")))

    async def _judge_auth(self, kind: str, answer: Exchange) -> None:
        check = f"auth-{kind}"
        body = answer.json_object()
        if answer.status_code == 401 and body is not None and "detail" in body:
            self.result(check, Outcome.PASS, "401 with a detail", answer)
        elif answer.status_code == 403 and body is not None:
            self.result(check, Outcome.NOTE, "refused with 403 (fal answers 401)", answer)
        elif answer.status_code is not None and answer.status_code < 300:
            self.result(check, Outcome.FAIL, f"accepted a request with {kind} auth", answer)
            await self._cancel_stray(answer)
        else:
            self.result(
                check, Outcome.FAIL, f"expected 401 {{detail}}, got {answer.describe()}", answer
            )

    async def _judge_validation(self, fields: list[str], answer: Exchange) -> None:
        check = "validation-422"
        if answer.status_code is not None and answer.status_code < 300:
            self.result(check, Outcome.FAIL, "accepted an invalid input", answer)
            await self._cancel_stray(answer)
            return
        if answer.status_code != 422:
            self.result(check, Outcome.FAIL, f"expected 422, got {answer.describe()}", answer)
            return
        body = answer.json_object()
        detail = body.get("detail") if body else None
        if not isinstance(detail, list) or not detail:
            self.result(check, Outcome.FAIL, "422 without a `detail` list of problems", answer)
            return
        malformed = [
            entry
            for entry in detail
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("loc"), list)
                and isinstance(entry.get("msg"), str)
                and isinstance(entry.get("type"), str)
            )
        ]
        if malformed:
            self.result(check, Outcome.FAIL, "a `detail` entry lacks loc/msg/type", answer)
            return
        named = {str(part) for entry in detail for part in entry["loc"][1:2]}
        missing = [name for name in fields if name not in named]
        if missing:
            reason = f"`detail` does not name {', '.join(missing)} (names: {sorted(named)})"
            self.result(check, Outcome.FAIL, reason, answer)
            return
        self.result(check, Outcome.PASS, f"422 naming {', '.join(fields)}", answer)

    async def _cancel_stray(self, answer: Exchange) -> None:
        """A request that should have been refused was queued: stop its spending."""
        body = answer.json_object() or {}
        request_id = body.get("request_id")
        if isinstance(request_id, str):
            url = self._url(request_id, "cancel", body.get("cancel_url"))
            await self.call("PUT", url)

    def _url(self, request_id: str, action: str, returned: Any) -> str:
        """A returned URL moved onto the base, or the URL fal's rule builds."""
        if isinstance(returned, str) and returned.startswith(("http://", "https://")):
            return rewrite_url(returned, self.target.base_url)
        path = request_path(self.app_id, request_id, action)  # type: ignore[arg-type]
        return self.target.base_url.rstrip("/") + path

    def _judge_accepted(self, answer: Exchange, *, check_urls: bool) -> None:
        body = answer.json_object()
        request_id = body.get("request_id") if body else None
        if answer.status_code != 200 or not isinstance(request_id, str):
            reason = f"expected 200 with a request_id, got {answer.describe()}"
            self.result("submit-accepted", Outcome.FAIL, reason, answer)
            raise _Abort("the submit was not accepted", ran=True)
        assert body is not None
        returned = {name: body.get(f"{name}_url") for name in _URL_ACTIONS}
        urls = {
            name: self._url(request_id, action, returned[name])
            for name, action in _URL_ACTIONS.items()
        }
        self.job = _Job(request_id, urls)
        self.result("submit-accepted", Outcome.PASS, f"200, request {request_id}", answer)
        if check_urls:
            self._judge_urls(request_id, returned, answer)

    def _judge_urls(self, request_id: str, returned: dict[str, Any], answer: Exchange) -> None:
        missing = [f"{a}_url" for a, url in returned.items() if not isinstance(url, str)]
        if missing:
            reason = f"the submit answer lacks {', '.join(missing)}: clients must build them"
            self.result("url-shape", Outcome.FAIL, reason, answer)
            return
        wrong = []
        for name, url in returned.items():
            want = request_path(self.app_id, request_id, _URL_ACTIONS[name])  # type: ignore[arg-type]
            got = urlsplit(url).path
            if not got.endswith(want):  # a base path prefix is fine; a longer id is not
                wrong.append(f"{name}_url path {got} (fal: {want})")
        if wrong:
            self.result("url-shape", Outcome.FAIL, "; ".join(wrong), answer)
        else:
            self.result("url-shape", Outcome.PASS, f"owner/alias only ({self.app_id})", answer)
        origins = {origin_of(url) for url in returned.values()}
        base = origin_of(self.target.base_url)
        if origins == {base}:
            self.result("url-origin", Outcome.PASS, f"returned URLs are on {base}", answer)
        else:
            reason = (
                f"returned URLs are on {', '.join(sorted(origins))}, not on {base}:"
                " callers must rewrite them (done here)"
            )
            self.result("url-origin", Outcome.NOTE, reason, answer)
        if self.target.auth_scheme == "Bearer":
            reason = "takes `Authorization: Bearer <key>`; fal takes `Key <key>`"
            self.result("auth-scheme", Outcome.NOTE, reason, answer)
        else:
            self.result("auth-scheme", Outcome.PASS, "takes `Authorization: Key <key>`", answer)

    # -- waiting ---------------------------------------------------------------------

    async def step_wait(self, step: Step) -> None:
        if step.options.get("via", "poll") == "stream":
            await self._wait_stream(bool(step.options.get("logs", True)))
        else:
            await self._wait_poll(bool(step.options.get("logs", True)))

    async def _status(self, job: _Job, logs: bool, auth: str = "ok") -> Exchange:
        return await self.call("GET", f"{job.urls['status']}?logs={int(logs)}", auth=auth)

    async def _wait_poll(self, logs: bool) -> None:
        job = self.need_job()
        answers: list[Exchange] = []
        problems: dict[str, tuple[str, Exchange]] = {}
        started = self.pacer.now()
        last_order, last_position = -1, None
        saw_pending = False
        while True:
            answer = await self._status(job, logs)
            answers.append(answer)
            body = answer.json_object()
            state = body.get("status") if body else None
            if state not in _ORDER:
                reason = f"status poll answered {answer.describe()} without a known status"
                self.result("completes", Outcome.FAIL, reason, answer)
                raise _Abort("status polling failed", ran=True)
            assert body is not None
            pending = state != "COMPLETED"
            saw_pending |= pending
            expected_code = 202 if pending else 200
            if answer.status_code != expected_code and "status-codes" not in problems:
                reason = f"{state} answered {answer.status_code}; fal answers {expected_code}"
                problems["status-codes"] = (reason, answer)
            if "logs-key" not in problems:
                if "logs" not in body:
                    problems["logs-key"] = ("a status answer has no `logs` key", answer)
                elif logs and not isinstance(body["logs"], list):
                    problems["logs-key"] = ("with ?logs=1, `logs` is not a list", answer)
            order = _ORDER[state]
            position = body.get("queue_position")
            if "status-order" not in problems:
                if order < last_order:
                    problems["status-order"] = (f"went back to {state}", answer)
                elif state == "IN_QUEUE" and not isinstance(position, int):
                    problems["status-order"] = ("IN_QUEUE without a queue_position", answer)
                elif (
                    isinstance(position, int)
                    and isinstance(last_position, int)
                    and position > last_position
                ):
                    reason = f"queue_position grew from {last_position} to {position}"
                    problems["status-order"] = (reason, answer)
            last_order = order
            last_position = position if state == "IN_QUEUE" else None
            if not pending:
                job.final_status = body
                break
            if self.pacer.now() - started > self.settings.job_timeout:
                reason = f"not COMPLETED after {self.settings.job_timeout:g} s ({state})"
                self.result("completes", Outcome.FAIL, reason, answers[0], answer)
                raise _Abort("the request did not complete in time", ran=True)
            await self.pacer.sleep(self.settings.poll_interval)
        polls = f"{len(answers)} polls"
        self.result("completes", Outcome.PASS, f"COMPLETED after {polls}", answers[-1])
        for check in ("status-codes", "logs-key", "status-order"):
            if check in problems:
                reason, evidence = problems[check]
                self.result(check, Outcome.FAIL, reason, evidence)
            elif check == "status-codes" and not saw_pending:
                self.result(check, Outcome.SKIP, "the request finished before the first poll")
            else:
                self.result(check, Outcome.PASS, f"held over {polls}", answers[-1])

    async def _wait_stream(self, logs: bool) -> None:
        job = self.need_job()
        url = f"{job.urls['status'].rstrip('/')}/stream?logs={int(logs)}"
        record = Exchange("GET", url)
        events: list[dict[str, Any]] = []
        problems: list[str] = []

        async def read() -> None:
            async with self.checker.client.stream(
                "GET", url, headers=self.target.auth()
            ) as response:
                record.status_code = response.status_code
                record.headers = response.headers
                if response.status_code != 200:
                    record.body = await response.aread()
                    return
                buffer = ""
                async for text in response.aiter_text():
                    buffer += text
                    while "\n\n" in buffer:
                        raw, buffer = buffer.split("\n\n", 1)
                        self._stream_event(raw, events, problems, record)

        try:
            await within(self.pacer, self.settings.job_timeout, read())
        except Deadline:
            if events and events[-1].get("status") == "COMPLETED":
                reason = f"still open {self.settings.job_timeout:g} s after COMPLETED"
                self.result("stream-closes", Outcome.FAIL, reason, record)
                job.final_status = events[-1]
                raise _Abort("the stream never closed", ran=True) from None
            problems.append(f"no COMPLETED event within {self.settings.job_timeout:g} s")
        except httpx.HTTPError as exc:
            record.error = f"transport error: {type(exc).__name__}: {exc}"
            problems.append(record.error)
        content_type = record.header("content-type") or ""
        if record.status_code == 200 and not content_type.startswith("text/event-stream"):
            problems.insert(0, f"content type {content_type!r}, not text/event-stream")
        if record.status_code != 200 and not record.error:
            problems.insert(0, f"stream answered {record.describe()}")
        record.body = "\n".join(str(e) for e in events[-3:]).encode()
        if problems or not events or events[-1].get("status") != "COMPLETED":
            reason = "; ".join(problems) or "the stream ended before COMPLETED"
            self.result("stream-events", Outcome.FAIL, reason, record)
            raise _Abort("the stream did not report completion", ran=True)
        job.final_status = events[-1]
        self.result("stream-events", Outcome.PASS, f"{len(events)} events, last COMPLETED", record)
        self.result("stream-closes", Outcome.PASS, "closed after COMPLETED", record)

    @staticmethod
    def _stream_event(
        raw: str, events: list[dict[str, Any]], problems: list[str], record: Exchange
    ) -> None:
        data = "\n".join(line[5:].lstrip() for line in raw.splitlines() if line.startswith("data:"))
        if not data:
            return  # a comment (keep-alive) or an empty event
        try:
            event = json.loads(data)
        except ValueError:
            problems.append(f"an event is not JSON: {data[:80]!r}")
            return
        if not isinstance(event, dict) or event.get("status") not in _ORDER:
            problems.append(f"an event has no known status: {data[:80]!r}")
            return
        if events and _ORDER[event["status"]] < _ORDER[events[-1]["status"]]:
            problems.append(f"went back from {events[-1]['status']} to {event['status']}")
        if events and events[-1]["status"] == "COMPLETED":
            problems.append("an event came after COMPLETED")
        events.append(event)

    async def step_compare(self, step: Step) -> None:
        job = self.need_completed()
        answer = await self._status(job, logs=True)
        polled = answer.json_object() or {}
        streamed = job.final_status or {}
        differences = [
            f"{name}: poll {polled.get(name)!r}, stream {streamed.get(name)!r}"
            for name in ("status", "request_id")
            if polled.get(name) != streamed.get(name)
        ]
        poll_logs, stream_logs = polled.get("logs"), streamed.get("logs")
        # The stream sends only new lines per event (the last may carry none);
        # the poll's full list cannot be empty when the stream showed some.
        if isinstance(poll_logs, list) and not poll_logs and stream_logs:
            differences.append("logs: the poll shows none, the stream showed some")
        if differences:
            self.result("status-stream-equivalent", Outcome.FAIL, "; ".join(differences), answer)
        else:
            reason = "the poll and the stream agree on status and request_id"
            self.result("status-stream-equivalent", Outcome.PASS, reason, answer)

    # -- results ------------------------------------------------------------------------

    async def step_result(self, step: Step) -> None:
        job = self.need_job()
        if step.options.get("early"):
            await self._result_early(job)
            return
        self.need_completed()
        answer = await self.call("GET", job.urls["response"])
        body = answer.json_object()
        if answer.status_code != 200 or body is None:
            reason = f"expected 200 with a JSON object, got {answer.describe()}"
            self.result("result", Outcome.FAIL, reason, answer)
            raise _Abort("no result", ran=True)
        job.result = body
        header = answer.header("x-fal-request-id")
        if header not in (None, job.request_id):
            reason = f"X-Fal-Request-Id {header!r} is not the request's id"
            self.result("result", Outcome.FAIL, reason, answer)
        else:
            self.result("result", Outcome.PASS, "200 with the output", answer)
        errors = sorted(
            Draft202012Validator(self.model.output_schema).iter_errors(body),
            key=lambda e: list(map(str, e.absolute_path)),
        )
        if errors:
            reason = "; ".join(
                f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:3]
            )
            self.result("output-schema", Outcome.FAIL, reason, answer)
        else:
            self.result("output-schema", Outcome.PASS, "matches the model's output schema", answer)

    async def _result_early(self, job: _Job) -> None:
        answer = await self.call("GET", job.urls["response"])
        if answer.status_code == 400:
            self.result("result-early-400", Outcome.PASS, "400 before completion", answer)
            return
        status = await self._status(job, logs=False)
        state = (status.json_object() or {}).get("status")
        if answer.status_code == 200 and state == "COMPLETED":
            reason = "the request finished before its result could be asked for early"
            self.result("result-early-400", Outcome.SKIP, reason, answer, status)
            return
        reason = f"before completion ({state}) the result answered {answer.describe()}; fal: 400"
        self.result("result-early-400", Outcome.FAIL, reason, answer, status)

    # -- parameters and media ---------------------------------------------------------------

    async def step_fidelity(self, step: Step) -> None:
        job = self.need_completed()
        if job.result is None:
            raise _Abort("no result to compare with the input")
        images = job.result.get("images")
        evidence = Exchange("GET", job.urls["response"], 200, None, _short_json(job.result))
        if self.model.output not in ("images", "synthesized") or not isinstance(images, list):
            self.result("num-images", Outcome.SKIP, "not an image model")
            return
        wanted = self.input.get("num_images", 1)
        if len(images) == wanted:
            self.result("num-images", Outcome.PASS, f"{wanted} images as asked", evidence)
        else:
            reason = f"asked for {wanted} images, got {len(images)}"
            self.result("num-images", Outcome.FAIL, reason, evidence)
        self._judge_sizes(images, evidence)
        if "seed" in self.input and "seed" in self.model.output_schema.get("properties", {}):
            got = job.result.get("seed")
            outcome = Outcome.PASS if got == self.input["seed"] else Outcome.FAIL
            self.result(
                "seed-echo", outcome, f"sent seed {self.input['seed']}, got {got}", evidence
            )
        if "output_format" in self.input:
            want = "image/" + self.input["output_format"]
            got_types = sorted({str(i.get("content_type")) for i in images if isinstance(i, dict)})
            outcome = Outcome.PASS if got_types == [want] else Outcome.FAIL
            reason = f"asked for {want}, got {', '.join(got_types) or 'nothing'}"
            self.result("output-format", outcome, reason, evidence)

    def _judge_sizes(self, images: list[Any], evidence: Exchange) -> None:
        sizes = [(i.get("width"), i.get("height")) for i in images if isinstance(i, dict)]
        source = self.model.size_from
        value = self.input.get(source) if source != "none" else None
        if value is None:
            self.result("image-size", Outcome.SKIP, "the input sets no size")
            return
        if not any(isinstance(w, int) and isinstance(h, int) for w, h in sizes):
            # Some models answer files without their pixel size (fal's `File`).
            self.result("image-size", Outcome.SKIP, "the images do not report their size")
            return
        if source == "aspect_ratio":
            w, h = (int(x) for x in str(value).split(":"))
            bad = [
                s
                for s in sizes
                if not (isinstance(s[0], int) and isinstance(s[1], int) and s[1] > 0)
                or abs(s[0] / s[1] - w / h) > 0.05 * (w / h)
            ]
            want = f"aspect ratio {value}"
        else:
            expected = (
                (value.get("width"), value.get("height"))
                if isinstance(value, dict)
                else preset_size(str(value))
            )
            bad = [s for s in sizes if s != expected]
            want = f"{expected[0]}x{expected[1]}" if expected else str(value)
        if bad or not sizes:
            reason = (
                f"asked for {want}, got {', '.join(f'{w}x{h}' for w, h in sizes) or 'no sizes'}"
            )
            self.result("image-size", Outcome.FAIL, reason, evidence)
        else:
            self.result("image-size", Outcome.PASS, f"every image is {want}", evidence)

    async def step_media(self, step: Step) -> None:
        job = self.need_completed()
        if job.result is None:
            raise _Abort("no result with media")
        files = list(media_objects(job.result))
        if not files:
            self.result("media-download", Outcome.FAIL, "the result names no media files")
            return
        fetched: list[tuple[dict[str, Any], Exchange]] = []
        for item in files:
            # Media are fetched as a browser would: no Authorization header.
            fetched.append((item, await self.call("GET", str(item["url"]), auth="none")))
        failed = [(item, a) for item, a in fetched if a.status_code != 200 or not a.body]
        if failed:
            item, answer = failed[0]
            reason = f"{len(failed)} of {len(files)} media not downloadable: {answer.describe()}"
            self.result("media-download", Outcome.FAIL, reason, answer)
            return
        wrong_type = [
            (item, a)
            for item, a in fetched
            if item.get("content_type")
            and (a.header("content-type") or "").split(";")[0] != item["content_type"]
        ]
        if wrong_type:
            item, answer = wrong_type[0]
            reason = (
                f"served as {answer.header('content-type')!r}, reported {item['content_type']!r}"
            )
            self.result("media-download", Outcome.FAIL, reason, answer)
        else:
            reason = f"{len(files)} file(s) downloaded without auth"
            self.result("media-download", Outcome.PASS, reason, fetched[0][1])
        self._judge_media_bytes(fetched)

    def _judge_media_bytes(self, fetched: list[tuple[dict[str, Any], Exchange]]) -> None:
        problems: list[tuple[str, Exchange]] = []
        for item, answer in fetched:
            if str(item.get("content_type", "")).startswith("video/"):
                if answer.body[4:8] != b"ftyp":
                    problems.append(("the video is not an MP4 file", answer))
                continue
            try:
                with Image.open(io.BytesIO(answer.body)) as image:
                    size = image.size
            except (UnidentifiedImageError, OSError):
                problems.append(("a media file is not a readable image", answer))
                continue
            reported = (item.get("width"), item.get("height"))
            if reported != (None, None) and size != reported:
                text = f"the file is {size[0]}x{size[1]}, reported {reported[0]}x{reported[1]}"
                problems.append((text, answer))
        if problems:
            self.result("media-size", Outcome.FAIL, problems[0][0], problems[0][1])
        else:
            self.result("media-size", Outcome.PASS, "every file is what the result reports")

    # -- cancel, unknown ids, other keys -----------------------------------------------------

    async def step_cancel(self, step: Step) -> None:
        job = self.need_job()
        if step.options["when"] == "completed":
            self.need_completed()
            answer = await self.call("PUT", job.urls["cancel"])
            body = answer.json_object() or {}
            if answer.status_code == 400 and body.get("status") == "ALREADY_COMPLETED":
                self.result("cancel-completed", Outcome.PASS, "400 ALREADY_COMPLETED", answer)
            else:
                reason = f"expected 400 ALREADY_COMPLETED, got {answer.describe()} {body}"
                self.result("cancel-completed", Outcome.FAIL, reason, answer)
            return
        answer = await self.call("PUT", job.urls["cancel"])
        body = answer.json_object() or {}
        if answer.status_code == 400 and body.get("status") == "ALREADY_COMPLETED":
            reason = "the request finished before it could be cancelled while queued"
            self.result("cancel-queued", Outcome.SKIP, reason, answer)
            return
        if answer.status_code != 202 or body.get("status") != "CANCELLATION_REQUESTED":
            reason = f"expected 202 CANCELLATION_REQUESTED, got {answer.describe()} {body}"
            self.result("cancel-queued", Outcome.FAIL, reason, answer)
            return
        await self._wait_poll_quietly(job)
        result = await self.call("GET", job.urls["response"])
        if result.status_code == 200:
            reason = "the cancelled request still yielded an output"
            self.result("cancel-queued", Outcome.FAIL, reason, answer, result)
        else:
            reason = f"202 CANCELLATION_REQUESTED; its result then answers {result.status_code}"
            self.result("cancel-queued", Outcome.PASS, reason, answer, result)

    async def _until(self, ready: Callable[[], Awaitable[bool]]) -> bool:
        """Ask `ready` every poll interval; False when the job timeout passes first."""
        started = self.pacer.now()
        while not await ready():
            if self.pacer.now() - started > self.settings.job_timeout:
                return False
            await self.pacer.sleep(self.settings.poll_interval)
        return True

    async def _wait_poll_quietly(self, job: _Job) -> None:
        """Wait for COMPLETED without judging the polls (another step's job)."""

        async def completed() -> bool:
            answer = await self._status(job, logs=False)
            return (answer.json_object() or {}).get("status") == "COMPLETED"

        await self._until(completed)

    async def step_unknown(self, step: Step) -> None:
        request_id = str(uuid.uuid4())
        calls = [
            ("GET", self._url(request_id, "status", None)),
            ("GET", self._url(request_id, "result", None)),
            ("PUT", self._url(request_id, "cancel", None)),
        ]
        answers = [await self.call(method, url) for method, url in calls]
        wrong = [a for a in answers if a.status_code != 404]
        if wrong:
            reason = f"an unknown request id answered {wrong[0].describe()}, not 404"
            self.result("unknown-id-404", Outcome.FAIL, reason, *wrong)
        else:
            self.result("unknown-id-404", Outcome.PASS, "status, result and cancel: 404", *answers)

    async def step_output_stream(self, step: Step) -> None:
        await surface.output_stream(self)

    async def step_upload(self, step: Step) -> None:
        await surface.upload(self)

    async def step_start_deadline(self, step: Step) -> None:
        await surface.start_deadline(self, float(step.options.get("seconds", 1.5)))

    async def step_webhook(self, step: Step) -> None:
        job = self.need_completed()
        receiver = self.checker.receiver
        if receiver is None:
            raise _Abort("needs a webhook receiver (--webhook-listen; off by default)")

        async def arrived() -> bool:
            return bool(receiver.arrived(self.hook))

        if not await self._until(arrived):
            reason = (
                f"no webhook reached {receiver.url_for(self.hook)} within"
                f" {self.settings.job_timeout:g} s of completion"
            )
            self.result("webhook-delivered", Outcome.FAIL, reason)
            raise _Abort("no webhook arrived", ran=True)
        deliveries = receiver.arrived(self.hook)
        first = deliveries[0]
        evidence = Exchange("POST", receiver.url_for(self.hook), None, None, first.body)
        count = f"{len(deliveries)} delivery(ies)"
        self.result("webhook-delivered", Outcome.PASS, count, evidence)
        self._judge_webhook_body(job, first, evidence)
        await self._judge_webhook_signature(first, evidence)

    def _judge_webhook_body(self, job: _Job, delivery: Delivery, evidence: Exchange) -> None:
        try:
            body = json.loads(delivery.body)
        except ValueError:
            self.result("webhook-body", Outcome.FAIL, "the webhook body is not JSON", evidence)
            return
        problems = []
        if not isinstance(body, dict):
            problems.append("not a JSON object")
            body = {}
        if body.get("request_id") != job.request_id:
            problems.append(f"request_id {body.get('request_id')!r}, not {job.request_id!r}")
        if body.get("status") != "OK":
            problems.append(f"status {body.get('status')!r}, not 'OK'")
        if job.result is not None and body.get("payload") != job.result:
            problems.append("payload is not the request's result")
        if problems:
            self.result("webhook-body", Outcome.FAIL, "; ".join(problems), evidence)
        else:
            reason = "request_id, status OK and the result as payload"
            self.result("webhook-body", Outcome.PASS, reason, evidence)

    async def _judge_webhook_signature(self, delivery: Delivery, evidence: Exchange) -> None:
        if not any(name.startswith("x-fal-webhook-") for name in delivery.headers):
            reason = "no X-Fal-Webhook-* headers: the webhook is not signed"
            self.result("webhook-signature", Outcome.FAIL, reason, evidence)
            return
        keys = await self.checker.jwks()
        jwks = keys.json_object()
        if keys.status_code != 200 or jwks is None:
            reason = f"the key set at {keys.url} answered {keys.describe()}"
            self.result("webhook-signature", Outcome.FAIL, reason, keys)
            return
        try:
            verify_webhook(delivery.headers, delivery.body, jwks)
        except WebhookVerificationError as exc:
            reason = f"does not verify with the keys at {keys.url}: {exc}"
            self.result("webhook-signature", Outcome.FAIL, reason, evidence)
            return
        reason = f"ED25519 signature verified with the keys at {keys.url}"
        self.result("webhook-signature", Outcome.PASS, reason, evidence)

    async def step_cross_key(self, step: Step) -> None:
        job = self.need_job()
        if not self.target.second_key:
            self.result("cross-key-404", Outcome.SKIP, "needs a second key (--second-key-env)")
            return
        answers = [
            await self._status(job, logs=False, auth="second-key"),
            await self.call("GET", job.urls["response"], auth="second-key"),
        ]
        leaked = [a for a in answers if a.status_code != 404]
        if leaked:
            reason = f"another key's request answered {leaked[0].describe()} to this key, not 404"
            self.result("cross-key-404", Outcome.FAIL, reason, *leaked)
        else:
            reason = "a second key gets 404 for the first key's request"
            self.result("cross-key-404", Outcome.PASS, reason, *answers)


def _short_json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
