"""Two-sided checks: drive an intermediary as a customer, read its upstream (the mock).

The intermediary under check uses the mock as its fal upstream. Each scenario
here sends customer requests holding a unique marker, reads what reached the
upstream about that marker (`mockserver.check.upstream`), scripts upstream
outcomes and faults through the mock's control API, and reports, with
evidence from both sides:

- ``forwarded-input``: the upstream got the customer's input, field by field
  (fields the intermediary adds are a note, dropped or changed ones a failure);
- ``one-upstream-submit``: one accepted upstream submit per accepted customer
  submit, also when the upstream answers 429/503 and when the customer retries;
- ``upstream-key`` / ``key-leak``: the upstream sees the intermediary's key,
  never a customer's, and that key never reaches a customer;
- ``customer-isolation``: two customers' results, statuses and cancels never cross;
- ``outcome-*``: model errors, infrastructure errors, cancellation, slow runs
  and expiry reach the customer as the upstream answered them;
- ``cancel-forwarded``, ``fal-headers``, ``webhook-forwarded``: pass-through.

Scenarios run one after another: an outcome scripted on the mock is taken by
the next upstream submit, so nothing else may submit meanwhile.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from mockserver.catalog import Model
from mockserver.check.exchange import Exchange
from mockserver.check.http import exchange
from mockserver.check.pacing import Pacer
from mockserver.check.results import CheckResult, Evidence, Verdict
from mockserver.check.upstream import (
    UpstreamControl,
    UpstreamRequest,
    billable,
    customer_texts,
    input_diff,
    leaked,
    new_marker,
)
from mockserver.endpoints import EndpointId, request_path
from mockserver.redact import fingerprint

#: Forwarded on submit; the intermediary should pass them on unchanged.
FAL_HEADERS = {
    "X-Fal-Queue-Priority": "low",
    "X-Fal-Request-Timeout": "600",
    "X-Fal-Runner-Hint": "two-sided-hint",
}
#: The webhook the customer asks for (never called by the check: port 9 is discard).
WEBHOOK_URL = "http://127.0.0.1:9/two-sided-webhook"
SEED = 424242
#: Run time of the scripted slow run, in status polls: enough to see it IN_PROGRESS.
SLOW_RUN_POLLS = 3
#: Past the mock's longest result retention (one hour).
EXPIRY_ADVANCE = 3601.0
#: Customer submits a full two-sided run sends (all to the mock, through the intermediary).
BILLABLE_SUBMITS = 11
#: The endpoint two-sided runs use when it is selected (any model with a prompt will do).
PREFERRED_MODEL = "fal-ai/flux-1/schnell"
_ERROR_OUTCOMES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("outcome-model-error", {"kind": "model_error", "status_code": 422}),
    (
        "outcome-infra-503",
        {"kind": "infra_error", "status_code": 503, "error_type": "runner_disconnected"},
    ),
    (
        "outcome-infra-504",
        {"kind": "infra_error", "status_code": 504, "error_type": "startup_timeout"},
    ),
)


@dataclass(frozen=True)
class Customer:
    """The intermediary as its customers call it. Keys never appear in the repr."""

    base_url: str
    key: str = field(repr=False)
    auth_scheme: str = "Bearer"
    second_key: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What evidence must never show."""
        return tuple(k for k in (self.key, self.second_key) if k)


@dataclass
class _Run:
    """One customer request followed through the intermediary."""

    marker: str
    sent: dict[str, Any]
    exchanges: list[Exchange] = field(default_factory=list)
    submit: Exchange | None = None
    request_id: str | None = None
    status_url: str | None = None
    result_url: str | None = None
    cancel_url: str | None = None
    final_status: dict[str, Any] | None = None
    statuses: list[str] = field(default_factory=list)


class TwoSidedChecker:
    """Runs the two-sided scenarios against an intermediary on one endpoint."""

    def __init__(
        self,
        customer: Customer,
        control: UpstreamControl,
        client: httpx.AsyncClient,
        model: Model,
        pacer: Pacer,
        *,
        poll_interval: float = 0.5,
        job_timeout: float = 120.0,
        request_timeout: float = 30.0,
        on_result: Callable[[CheckResult], None] | None = None,
    ) -> None:
        self.customer = customer
        self.control = control
        self.client = client
        self.model = model
        self.pacer = pacer
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.request_timeout = request_timeout
        self.on_result = on_result
        self.results: list[CheckResult] = []
        self.submits = 0  # accepted customer submits (each one billed upstream)
        self._scenario = ""
        self._all: list[Exchange] = []
        self._upstream_keys: set[str] = set()  # whole keys' fingerprints
        self._upstream_parts: set[str] = set()  # and their halves (key_id:key_secret)
        self._key_evidence: list[UpstreamRequest] = []

    # -- the run ---------------------------------------------------------------

    async def run(self) -> list[CheckResult]:
        """Every two-sided scenario, in order; the results."""
        problem = await self.control.connect()
        if problem is not None:
            self._scenario = "two-sided"
            self._add("upstream-control", Verdict.FAIL, problem)
            return self.results
        scenarios: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("two-sided-forward", self._forward),
            ("two-sided-retry", self._retry),
            ("two-sided-isolation", self._isolation),
            ("two-sided-cancel", self._cancel),
            ("two-sided-outcomes", self._outcomes),
            ("two-sided-slow", self._slow),
            ("two-sided-expiry", self._expiry),
            ("two-sided-keys", self._keys),
        ]
        for name, scenario in scenarios:
            self._scenario = name
            try:
                await scenario()
            except _Stop:
                break
            finally:
                await self.control.clear_faults()
        return self.results

    # -- scenarios --------------------------------------------------------------

    async def _forward(self) -> None:
        run = self._new_run()
        await self._submit(run, headers=FAL_HEADERS, webhook=WEBHOOK_URL)
        if not _accepted(run.submit):
            await self._follow(run)  # reports why the submit was not accepted
            raise _Stop
        submits = [e for e in await self._upstream(run) if e.action == "submit"]
        if not submits:
            # Its upstream is not this mock (real fal?): every further submit
            # could be billed, so nothing more is sent.
            self._add(
                "upstream-is-mock",
                Verdict.FAIL,
                "the intermediary accepted a submit, but nothing holding its marker reached"
                f" the mock at {self.control.url}: is the mock its upstream? Two-sided run stopped",
                self._ev(run.submit),
            )
            raise _Stop
        if not await self._follow(run):
            return
        upstream = await self._upstream(run)
        self._count_submits(run, upstream, customer_accepted=1)
        if not submits:
            return
        first = submits[0]
        forwarded = first.body if isinstance(first.body, dict) else {}
        diff = input_diff(run.sent, forwarded)
        evidence = (*self._ev(run.submit), first.evidence())
        if not diff.faithful:
            self._add("forwarded-input", Verdict.FAIL, diff.describe(), evidence)
        elif diff.added:
            self._add(
                "forwarded-input",
                Verdict.NOTE,
                f"every field arrived unchanged; the intermediary {diff.describe()}",
                evidence,
            )
        else:
            self._add("forwarded-input", Verdict.PASS, "every field arrived unchanged", evidence)
        missing = {
            name: value
            for name, value in FAL_HEADERS.items()
            if first.headers.get(name.lower()) != value
        }
        self._add(
            "fal-headers",
            Verdict.FAIL if missing else Verdict.PASS,
            f"not passed on as sent: {', '.join(missing)}"
            if missing
            else f"{', '.join(FAL_HEADERS)} reached the upstream as sent",
            evidence,
        )
        hook = first.query.get("fal_webhook")
        if hook == WEBHOOK_URL:
            self._add("webhook-forwarded", Verdict.PASS, "fal_webhook passed on as sent", evidence)
        elif hook:
            self._add(
                "webhook-forwarded",
                Verdict.NOTE,
                "the intermediary asks the upstream for its own webhook (it must relay it)",
                evidence,
            )
        else:
            self._add(
                "webhook-forwarded",
                Verdict.FAIL,
                "the upstream submit has no fal_webhook",
                evidence,
            )
        await self._result_faithful(run, upstream)

    async def _retry(self) -> None:
        endpoint = self.model.endpoint_id
        # The upstream refuses once: an intermediary may retry (nothing was created).
        await self.control.fault({"status_code": 503, "action": "submit", "endpoint": endpoint})
        run = self._new_run()
        await self._submit(run)
        upstream = await self._upstream(run)
        accepted = int(_accepted(run.submit))
        self._count_submits(run, upstream, customer_accepted=accepted)
        # The upstream keeps refusing (429): the customer sees an error and retries.
        await self.control.fault(
            {
                "status_code": 429,
                "retry_after": 1,
                "action": "submit",
                "endpoint": endpoint,
                "times": 5,
            }
        )
        again = self._new_run()
        await self._submit(again)
        first_answer = again.submit
        await self.control.clear_faults()
        accepted = int(_accepted(first_answer))
        if not accepted:
            await self._submit(again)  # the customer retries, as fal's clients do
            accepted = int(_accepted(again.submit))
        upstream = await self._upstream(again)
        if first_answer is not None and not _accepted(first_answer):
            passed = first_answer.status_code in (429, 503)
            refused = [e.evidence() for e in upstream if e.status_code == 429]
            self._add(
                "upstream-error-passed",
                Verdict.PASS if passed else Verdict.FAIL,
                f"the upstream answered 429 {len(refused)} time(s); the customer got "
                + first_answer.describe(),
                (*self._ev(first_answer), *refused[:3]),
            )
        self._count_submits(again, upstream, customer_accepted=accepted)

    async def _isolation(self) -> None:
        if not self.customer.second_key:
            self._add(
                "customer-isolation",
                Verdict.SKIP,
                "needs a second customer key (--second-key-env)",
            )
            return
        first, second = self._new_run(), self._new_run()
        await self._submit(first)
        await self._submit(second, key=self.customer.second_key)
        if not await self._follow(first) or not await self._follow(
            second, key=self.customer.second_key
        ):
            return
        problems: list[str] = []
        evidence: list[Evidence] = []
        for run, other in ((first, second), (second, first)):
            status_id = (run.final_status or {}).get("request_id")
            if status_id != run.request_id:
                problems.append(f"the status of {run.request_id} names request {status_id}")
            answer = run.exchanges[-1]
            text = answer.body.decode("utf-8", "replace")
            evidence += self._ev(answer)
            if other.marker in text or run.marker not in text:
                problems.append(
                    f"the result for {run.marker} holds "
                    f"{'the other customer' if other.marker in text else 'not its own'} input"
                )
        # The second customer must not read or cancel the first one's request.
        for method, url in (
            ("GET", first.status_url),
            ("GET", first.result_url),
            ("PUT", first.cancel_url),
        ):
            if url is None:
                continue
            answer = await self._call(method, url, key=self.customer.second_key)
            evidence += self._ev(answer)
            if answer.status_code is not None and answer.status_code < 300:
                problems.append(
                    f"the second customer's {method} {url} answered {answer.describe()}"
                )
        upstream = await self._upstream(first)
        crossed = [e for e in upstream if e.action == "cancel"]
        if crossed:
            problems.append("the second customer's cancel reached the upstream for the first")
            evidence += [e.evidence() for e in crossed]
        self._add(
            "customer-isolation",
            Verdict.FAIL if problems else Verdict.PASS,
            "; ".join(problems) or "results, statuses and cancels stayed with their customer",
            tuple(evidence),
        )

    async def _cancel(self) -> None:
        # Queued for long on the upstream, so a cancel finds it waiting.
        await self.control.script(self.model.endpoint_id, {"queue_seconds": 30, "run_seconds": 1})
        run = self._new_run()
        await self._submit(run)
        if run.cancel_url is None:
            self._add("cancel-forwarded", Verdict.SKIP, "the submit was not accepted")
            return
        answer = await self._call("PUT", run.cancel_url)
        run.exchanges.append(answer)
        upstream = await self._upstream(run)
        cancels = [e for e in upstream if e.action == "cancel"]
        ids = {e.request_id for e in upstream if e.billable}
        jobs = [await self.control.job(i) for i in ids if i]
        cancelled = any(j is not None and j.get("cancelled") for j in jobs)
        evidence = (*self._ev(answer), *(e.evidence() for e in upstream))
        if cancels and cancelled:
            self._add("cancel-forwarded", Verdict.PASS, "the cancel reached the upstream", evidence)
        else:
            self._add(
                "cancel-forwarded",
                Verdict.FAIL,
                f"the customer's cancel answered {answer.describe()}, but the upstream "
                + ("received no cancel" if not cancels else "job was not cancelled"),
                evidence,
            )
        if not await self._follow(run):
            return
        await self._compare_result(run, "outcome-cancelled", 499, upstream)

    async def _outcomes(self) -> None:
        for check, outcome in _ERROR_OUTCOMES:
            await self.control.script(self.model.endpoint_id, outcome)
            run = self._new_run()
            await self._submit(run)
            if not await self._follow(run):
                continue
            upstream = await self._upstream(run)
            await self._compare_result(run, check, int(outcome["status_code"]), upstream)

    async def _slow(self) -> None:
        await self.control.script(
            self.model.endpoint_id,
            {"queue_seconds": 0, "run_seconds": SLOW_RUN_POLLS * self.poll_interval},
        )
        run = self._new_run()
        await self._submit(run)
        if not await self._follow(run):
            return
        upstream = await self._upstream(run)
        saw_running = "IN_PROGRESS" in run.statuses
        result = run.exchanges[-1]
        ok = saw_running and result.status_code == 200
        self._add(
            "outcome-slow",
            Verdict.PASS if ok else Verdict.FAIL,
            f"the customer saw {' -> '.join(dict.fromkeys(run.statuses))}, then the result"
            f" answered {result.describe()}",
            (*self._ev(result), *(e.evidence() for e in upstream[-2:])),
        )

    async def _expiry(self) -> None:
        if not self.control.manual_clock:
            self._add(
                "outcome-expired",
                Verdict.SKIP,
                "needs the mock on a manual clock (mockserver serve --clock manual)",
            )
            return
        run = self._new_run()
        await self._submit(run)
        if not await self._follow(run) or run.result_url is None:
            return
        await self.control.advance(EXPIRY_ADVANCE)
        answer = await self._call("GET", run.result_url)
        upstream = await self._upstream(run)
        self._add(
            "outcome-expired",
            Verdict.PASS if answer.status_code == 404 else Verdict.FAIL,
            f"after the upstream's retention the customer's result answered {answer.describe()}"
            " (the upstream answers 404)",
            (*self._ev(answer), *(e.evidence() for e in upstream[-1:])),
        )

    async def _keys(self) -> None:
        mine = {fingerprint(k) for k in self.customer.secrets}
        seen = self._upstream_keys
        evidence = tuple(e.evidence() for e in self._key_evidence[:3])
        if not seen:
            self._add("upstream-key", Verdict.SKIP, "no upstream request was seen")
        elif seen & mine:
            self._add(
                "upstream-key",
                Verdict.FAIL,
                "the upstream received a customer's key (fingerprint match)",
                evidence,
            )
        elif len(seen) > 1:
            self._add(
                "upstream-key",
                Verdict.NOTE,
                f"the upstream saw {len(seen)} different keys, none a customer's",
                evidence,
            )
        else:
            self._add(
                "upstream-key",
                Verdict.PASS,
                f"every upstream request carried the intermediary's key ({next(iter(seen))}),"
                " never a customer's",
                evidence,
            )
        where = leaked(customer_texts(self._all), (seen | self._upstream_parts) - mine)
        self._add(
            "key-leak",
            Verdict.FAIL if where else Verdict.PASS,
            f"the upstream key (by fingerprint) appears in {len(where)} answers: {where[0]}"
            + (f" and {len(where) - 1} more" if len(where) > 1 else "")
            if where
            else f"the upstream key is in none of the {len(self._all)} answers customers got",
            tuple(self._ev(next(x for x in self._all if f"{x.method} {x.url}" in where[0])))
            if where
            else (),
        )

    # -- shared steps ----------------------------------------------------------------

    def _new_run(self) -> _Run:
        marker = new_marker()
        sent: dict[str, Any] = (
            copy.deepcopy(self.model.examples[0]["input"]) if self.model.examples else {}
        )
        known = set(self.model.input_schema.get("properties", {}))
        sent["prompt"] = f"two-sided check {marker}"
        if "seed" in known:
            sent["seed"] = SEED
        if "num_images" in known:
            sent["num_images"] = 1
        return _Run(marker, sent)

    def _headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"{self.customer.auth_scheme} {key or self.customer.key}"}

    async def _call(
        self,
        method: str,
        url: str,
        *,
        key: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        answer = await exchange(
            self.client,
            self.pacer,
            self.request_timeout,
            method,
            url,
            headers={**(headers or {}), **self._headers(key)},
            body=body,
        )
        self._all.append(answer)
        return answer

    async def _submit(
        self,
        run: _Run,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        webhook: str | None = None,
    ) -> None:
        url = f"{self.customer.base_url}/{self.model.endpoint_id}"
        if webhook:
            url += "?" + str(httpx.QueryParams({"fal_webhook": webhook}))
        answer = await self._call("POST", url, key=key, body=run.sent, headers=headers)
        run.exchanges.append(answer)
        run.submit = answer
        data = answer.json_object()
        if answer.status_code != 200 or data is None:
            return
        self.submits += 1
        run.request_id = str(data.get("request_id"))
        app_id = EndpointId.parse(self.model.endpoint_id).app_id
        own = f"{self.customer.base_url}{request_path(app_id, run.request_id)}"
        # The URLs an intermediary returns may need rewriting (the seed's quirk):
        # address the request on the intermediary's own base, as its customers must.
        run.result_url = own
        run.status_url = own + "/status"
        run.cancel_url = own + "/cancel"

    async def _follow(self, run: _Run, *, key: str | None = None) -> bool:
        """Poll until COMPLETED, then fetch the result (the last exchange)."""
        if run.status_url is None or run.result_url is None:
            self._add(
                "submit-accepted",
                Verdict.FAIL,
                "the intermediary did not accept a valid submit: "
                + (run.submit.describe() if run.submit else "no answer"),
                self._ev(run.submit),
            )
            return False
        start, moved = self.pacer.now(), 0.0
        while True:
            answer = await self._call("GET", run.status_url, key=key)
            data = answer.json_object() or {}
            status = str(data.get("status", answer.describe()))
            run.statuses.append(status)
            if status == "COMPLETED":
                run.final_status = data
                break
            elapsed = self.pacer.now() - start + moved
            if answer.status_code not in (200, 202) or elapsed > self.job_timeout:
                self._add(
                    "completes",
                    Verdict.FAIL,
                    f"status polling ended with {answer.describe()} ({status})",
                    self._ev(answer),
                )
                return False
            # On a manual upstream clock, polling moves it (and counts as waiting).
            if await self.control.advance(self.poll_interval):
                moved += self.poll_interval
            else:
                await self.pacer.sleep(self.poll_interval)
        run.exchanges.append(await self._call("GET", run.result_url, key=key))
        return True

    async def _upstream(self, run: _Run) -> list[UpstreamRequest]:
        entries = await self.control.about(run.marker)
        for entry in entries:
            if entry.key is not None:
                self._upstream_keys.add(entry.key)
                self._upstream_parts.update(entry.key_fingerprints[1:])
                if len(self._key_evidence) < 3:
                    self._key_evidence.append(entry)
        return entries

    def _count_submits(
        self, run: _Run, upstream: list[UpstreamRequest], *, customer_accepted: int
    ) -> None:
        accepted = billable(e for e in upstream if e.action == "submit")
        attempts = [e for e in upstream if e.action == "submit"]
        flat = (
            *(e for x in run.exchanges if x.method == "POST" for e in self._ev(x)),
            *(e.evidence() for e in attempts),
        )
        answers = ", ".join(str(e.status_code) for e in attempts) or "none"
        reason = (
            f"{customer_accepted} customer submit(s) accepted; {len(accepted)} upstream"
            f" submit(s) with its marker accepted (billed); upstream answers: {answers}"
        )
        ok = len(accepted) == customer_accepted
        self._add("one-upstream-submit", Verdict.PASS if ok else Verdict.FAIL, reason, flat)

    async def _result_faithful(self, run: _Run, upstream: list[UpstreamRequest]) -> None:
        result = run.exchanges[-1]
        data = result.json_object() or {}
        text = result.body.decode("utf-8", "replace")
        ok = result.status_code == 200 and run.marker in text
        ids = [e.request_id for e in upstream if e.billable and e.request_id]
        job = await self.control.job(ids[0]) if ids else None
        if ok and job is not None and isinstance(data.get("seed"), int):
            ok = data["seed"] == job.get("seed")
        self._add(
            "result-faithful",
            Verdict.PASS if ok else Verdict.FAIL,
            f"the customer's result answered {result.describe()}"
            + (", with its own input and the upstream run's seed" if ok else ""),
            (*self._ev(result), *(e.evidence() for e in upstream if e.action == "result")),
        )

    async def _compare_result(
        self, run: _Run, check: str, upstream_status: int, upstream: list[UpstreamRequest]
    ) -> None:
        result = run.exchanges[-1]
        seen = [e for e in await self._upstream(run) if e.action == "result"]
        problems: list[str] = []
        if result.status_code != upstream_status:
            problems.append(
                f"the upstream answered {upstream_status}, the customer got {result.describe()}"
            )
        data = result.json_object() or {}
        if upstream_status in (503, 504):
            kind = data.get("error_type") or result.header("x-fal-error-type")
            if not kind:
                problems.append("no error_type reached the customer")
        if upstream_status == 422 and not isinstance(data.get("detail"), list):
            problems.append("the 422's detail list did not reach the customer")
        self._add(
            check,
            Verdict.FAIL if problems else Verdict.PASS,
            "; ".join(problems)
            or f"the upstream's {upstream_status} reached the customer as it was",
            (*self._ev(result), *(e.evidence() for e in (seen or upstream)[-1:])),
        )

    def _ev(self, answer: Exchange | None) -> tuple[Evidence, ...]:
        if answer is None:
            return ()
        return (answer.evidence(self.customer.secrets),)

    def _add(
        self, check: str, verdict: Verdict, reason: str, evidence: tuple[Evidence, ...] = ()
    ) -> None:
        result = CheckResult(
            self._scenario, self.model.endpoint_id, check, verdict, reason, evidence
        )
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)


class _Stop(Exception):
    """End the two-sided run now (its submits would not reach the mock)."""


def model_for(models: Iterable[Model]) -> Model | None:
    """The model a two-sided run uses: the preferred one, else the first with a prompt."""
    usable = [m for m in models if "prompt" in m.input_schema.get("properties", {})]
    preferred = [m for m in usable if m.endpoint_id == PREFERRED_MODEL]
    chosen = preferred or usable
    return chosen[0] if chosen else None


def _accepted(answer: Exchange | None) -> bool:
    return answer is not None and answer.status_code == 200
