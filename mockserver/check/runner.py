"""Run planned scenarios against a queue server, concurrently, into a `Report`.

The first request of the run goes alone: when it shows that the server cannot
be reached or refuses the key, the run stops there with one finding that says
so, instead of failing every check the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import httpx

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.http import exchange
from mockserver.check.pacing import Pacer, RealPacer
from mockserver.check.plan import Planned
from mockserver.check.realtime import WebSocketOpener
from mockserver.check.receiver import WebhookReceiver
from mockserver.check.results import CheckResult, Report, Verdict
from mockserver.check.steps import Job
from mockserver.check.target import Settings, Target
from mockserver.check.unit import Stopped, Unit

# How long cancelling the jobs left running may take when a run is interrupted.
_CANCEL_TIMEOUT = 5.0


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
        websockets: WebSocketOpener | None = None,
    ) -> None:
        self.target = target
        self.client = client
        self.settings = settings or Settings()
        self.pacer: Pacer = pacer or RealPacer()
        self.on_result = on_result
        self.on_unit = on_unit
        self.receiver = receiver
        # How realtime checks open a WebSocket; None (an in-process run, whose
        # client has no network) skips them, saying so.
        self.websockets = websockets
        self.report = Report(target.base_url, target.auth_scheme)
        self.stopped: str | None = None  # why the run stopped early
        self.jobs: list[Job] = []  # every accepted request, to cancel on interruption
        self._jwks: Exchange | None = None
        self._jwks_lock = asyncio.Lock()
        self._probe: Unit | None = None  # whose first request goes alone
        self._probed = asyncio.Event()

    async def run(self, planned: list[Planned]) -> Report:
        """Run every planned pair (at most `concurrency` at a time)."""
        started = time.perf_counter()
        gate = asyncio.Semaphore(self.settings.concurrency)
        units = [Unit(self, item) for item in planned if item.runs]
        # The probe: the first run that submits a billable request, else the first run.
        self._probe = next((u for u in units if u.scenario.billable_submits), None)
        self._probe = self._probe or (units[0] if units else None)
        if self._probe is None:
            self._probed.set()
        for item in planned:
            if item.skip is not None:
                reason = item.skip.text(item.scenario)
                where = (item.scenario.id, item.model.endpoint_id)
                self.add(CheckResult(*where, item.skip.check, Verdict.SKIP, reason))

        async def one(unit: Unit) -> None:
            async with gate:
                await unit.run()
            if self._probe is unit:
                self._probed.set()  # it may have ended before sending anything
            if self.on_unit is not None:
                self.on_unit(unit.item)

        ordered = sorted(units, key=lambda u: u is not self._probe)
        try:
            await asyncio.gather(*(one(unit) for unit in ordered))
        finally:
            self.report.seconds = time.perf_counter() - started
        return self.report

    async def admit(self, unit: Unit) -> None:
        """Hold every request but the probe's until the probe is answered; then
        refuse all when the run stopped."""
        if unit is not self._probe:
            await self._probed.wait()
        if self.stopped:
            raise Stopped

    def answered(self, unit: Unit, answer: Exchange, *, submit: bool) -> None:
        """See an answer: the probe's decides whether the run goes on."""
        if unit is not self._probe or self._probed.is_set():
            return
        self._probed.set()
        finding = self._stop_finding(answer, submit=submit)
        if finding is not None:
            unit.add(finding)
            self.stopped = f"the run stopped at once ({finding.check} failed)"
            raise Stopped

    def _stop_finding(self, answer: Exchange, *, submit: bool) -> Finding | None:
        """A finding that makes every further request pointless, or None."""
        base = self.target.base_url
        if answer.failure == "connect":
            reason = f"cannot connect to {base}: {answer.error}"
            return Finding.of("reachable", Verdict.FAIL, reason, answer)
        if answer.failure == "timeout":
            reason = f"no answer from {base}: {answer.error}"
            return Finding.of("reachable", Verdict.FAIL, reason, answer)
        if submit and answer.status_code in (401, 403):
            other = self.target.other_scheme.lower()
            reason = (
                f"the key was refused: a submit with `Authorization:"
                f" {self.target.auth_scheme} <key>` answered {answer.status_code}"
                f" — is the scheme {other} (--auth-scheme {other}), or the key wrong?"
            )
            return Finding.of("key-accepted", Verdict.FAIL, reason, answer)
        return None

    def submitted(self, job: Job) -> None:
        """Keep an accepted request (cancelled if the run is interrupted)."""
        self.jobs.append(job)

    async def cancel_running(self) -> int:
        """Cancel the accepted requests not known to be finished; how many were asked."""
        running = [job for job in self.jobs if not job.completed and not job.cancelled]

        async def cancel(job: Job) -> None:
            await exchange(
                self.client,
                self.pacer,
                min(self.settings.request_timeout, _CANCEL_TIMEOUT),
                "PUT",
                job.urls["cancel"],
                headers=self.target.auth(),
            )
            job.cancelled = True

        await asyncio.gather(*(cancel(job) for job in running))
        return len(running)

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


async def run_interruptible(checker: Checker, planned: list[Planned]) -> Report:
    """`checker.run`, except that when cancelled (Ctrl-C) it cancels the requests
    already submitted and returns the partial report, marked interrupted."""
    try:
        return await checker.run(planned)
    except asyncio.CancelledError:
        checker.stopped = checker.stopped or "interrupted"
        report = checker.report
        report.interrupted = True
        with contextlib.suppress(asyncio.CancelledError):
            report.cancelled = await checker.cancel_running()
        return report
