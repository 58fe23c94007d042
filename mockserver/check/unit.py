"""One scenario on one endpoint: its steps in order, sharing one job."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.http import exchange
from mockserver.check.results import CheckResult, Verdict
from mockserver.check.steps import STEP_KINDS, Abort, Job, Where
from mockserver.endpoints import Action, EndpointId, request_path, rewrite_url

if TYPE_CHECKING:
    from mockserver.check.plan import Planned
    from mockserver.check.runner import Checker


class Stopped(Exception):
    """The run stopped (the target refused the key, could not be reached, or the
    user interrupted): no more requests are sent."""


class Unit:
    """The state a scenario run's steps share, and the calls they make."""

    def __init__(self, checker: Checker, item: Planned) -> None:
        self.checker = checker
        self.target = checker.target
        self.settings = checker.settings
        self.pacer = checker.pacer
        self.item = item
        self.scenario = item.scenario
        self.model = item.model
        self.where = Where(self.target.base_url, self.model.endpoint_id)
        self.app_id = EndpointId.parse(self.model.endpoint_id).app_id
        self.input: dict[str, Any] = self.scenario.input_for(self.model)
        self.job: Job | None = None
        self.hook = uuid.uuid4().hex  # this run's webhook path on the receiver

    # -- what steps use -----------------------------------------------------------------

    def add(self, finding: Finding) -> None:
        """Record a finding of this run (evidence with the secrets masked)."""
        secrets = self.target.secrets
        self.checker.add(
            CheckResult(
                self.scenario.id,
                self.model.endpoint_id,
                finding.check,
                finding.verdict,
                finding.reason,
                tuple(e.evidence(secrets) for e in finding.exchanges),
            )
        )

    async def call(
        self, method: str, url: str, *, auth: str = "ok", body: Any = None, submit: bool = False
    ) -> Exchange:
        """One request with the auth of `auth`; `submit`: it may queue (and cost) a job."""
        await self.checker.admit(self)
        answer = await exchange(
            self.checker.client,
            self.pacer,
            self.settings.request_timeout,
            method,
            url,
            headers=self.target.auth(auth),
            body=body,
        )
        if submit and answer.accepted:
            self.checker.report.submits += 1
        self.checker.answered(self, answer, submit=submit and auth == "ok")
        return answer

    async def status(self, job: Job, logs: bool, auth: str = "ok") -> Exchange:
        """One status poll of `job`."""
        return await self.call("GET", f"{job.urls['status']}?logs={int(logs)}", auth=auth)

    def url(self, request_id: str, action: Action, returned: Any) -> str:
        """A returned URL moved onto the base, or the URL fal's rule builds."""
        if isinstance(returned, str) and returned.startswith(("http://", "https://")):
            return rewrite_url(returned, self.target.base_url)
        return self.target.base_url.rstrip("/") + request_path(self.app_id, request_id, action)

    async def cancel_stray(self, answer: Exchange) -> None:
        """A request that should have been refused was queued: stop its spending."""
        body = answer.json_object() or {}
        request_id = body.get("request_id")
        if answer.accepted and isinstance(request_id, str):
            await self.call("PUT", self.url(request_id, "cancel", body.get("cancel_url")))

    def need_job(self) -> Job:
        """The accepted job, or stop: an earlier step did not get one."""
        if self.job is None:
            raise Abort("no request was accepted by an earlier step")
        return self.job

    def need_completed(self) -> Job:
        """The completed job, or stop."""
        job = self.need_job()
        if not job.completed:
            raise Abort("the request did not complete in an earlier step")
        return job

    async def until(self, ready: Callable[[], Awaitable[bool]]) -> bool:
        """Ask `ready` every poll interval; False when the job timeout passes first."""
        started = self.pacer.now()
        while not await ready():
            if self.pacer.now() - started > self.settings.job_timeout:
                return False
            await self.pacer.sleep(self.settings.poll_interval)
        return True

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Every step in order; the first that cannot go on ends the run with one finding."""
        steps = list(self.scenario.steps)
        for index, step in enumerate(steps):
            try:
                if self.checker.stopped:
                    raise Stopped
                await STEP_KINDS[step.kind].run(self, step.options)
            except Stopped:
                self.add(Finding.of("not-run", Verdict.SKIP, str(self.checker.stopped)))
                return
            except Abort as exc:
                # One finding, not one per step: the cause is what matters.
                rest = steps[index + 1 :] if exc.ran else steps[index:]
                if rest:
                    names = ", ".join(step.kind for step in rest)
                    self.add(Finding.of("not-run", Verdict.SKIP, f"{names} not run: {exc}"))
                return
