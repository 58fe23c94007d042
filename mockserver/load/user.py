"""The Locust user: one fal queue job per task, every answer judged by live mode's checks.

A job is submit → wait (status polls, or the status stream) → result → media,
with think time between jobs (a share of jobs is cancelled right after the
submit instead). Each answer becomes an `Exchange` and goes through
`mockserver.check.judge` (the functions `mockserver check` uses); the findings
and the job's fate go to the process's `Ledger`.

In a two-sided run (the upstream is the mock) each input holds a marker of its
own, and each job leaves a `CustomerJob` record: what it sent, whether it was
accepted and cancelled, whether the upstream key (known by fingerprint) is in
any answer it got, whether its result holds another job's marker. The
upstream side is judged after the run (`mockserver.check.upstream.judge_jobs`).
"""

from __future__ import annotations

import codecs
import copy
import random
import time
from collections.abc import Collection
from typing import Any, ClassVar

import gevent
from locust import HttpUser, constant, task
from locust.exception import StopUser
from requests import RequestException, Response, Timeout

from mockserver.catalog import Model
from mockserver.check import judge
from mockserver.check.exchange import Exchange, Failure
from mockserver.check.findings import Finding
from mockserver.check.results import CheckResult, Verdict
from mockserver.check.target import Settings
from mockserver.check.upstream import (
    CustomerJob,
    customer_texts,
    foreign_markers,
    leaked,
    mask_fingerprinted,
)
from mockserver.endpoints import EndpointId, request_path, rewrite_url
from mockserver.load.config import LoadConfig
from mockserver.load.session import Session
from mockserver.outputs import media_objects

# The names each step has in Locust's statistics (and so in its HTML and CSV).
STEPS = ("submit", "status", "stream", "result", "media", "cancel")
# A made-up step for the time from an accepted submit to COMPLETED.
TIME_TO_COMPLETE = "time to complete"
JOB_REQUEST_TYPE = "JOB"
# Longest a stream may stay open after its COMPLETED event before that is a failure
# (live mode's default).
STREAM_CLOSE_GRACE = Settings.stream_grace
# Longest wait a Retry-After may ask for (a longer one waits this long).
MAX_RETRY_AFTER = 10.0


class _Lost(Exception):
    """The job is lost, for the reason `kind` (one of `ledger.LOST_KINDS`)."""

    def __init__(self, kind: str, finding: Finding) -> None:
        super().__init__(kind)
        self.kind = kind
        self.finding = finding


def user_class(session: Session) -> type[HttpUser]:
    """The user class for one process's `session` (named `QueueUser` on every node)."""

    class QueueUser(HttpUser):
        """Runs fal queue jobs against the base URL, one per task."""

        shared: ClassVar[Session] = session

        # Think time is spent inside the task, before the next submit: Locust may kill a
        # user that is in its own wait even as it starts the next task, and a job cut in
        # its submit could not be accounted for; here a kill only ever cuts thinking.
        wait_time = constant(0)

        @task
        def job(self) -> None:
            """Think, then one whole job; stops this user when the submit budget is spent."""
            config = self.shared.config
            if config is None:
                raise StopUser()
            gevent.sleep(random.uniform(config.think_min, config.think_max))
            if self.shared.stopping or self.shared.ledger.halted:
                raise StopUser()
            if not self.shared.ledger.take_submit():
                raise StopUser()
            _Job(self, self.shared, config, random.choice(self.shared.models)).run()

    return QueueUser


class _Job:
    """One job's flow and the evidence it gathers."""

    def __init__(self, user: HttpUser, session: Session, config: LoadConfig, model: Model) -> None:
        self.user = user
        self.session = session
        self.config = config
        self.ledger = session.ledger
        self.model = model
        self.app_id = EndpointId.parse(model.endpoint_id).app_id
        self.base = config.base_url.rstrip("/")
        marker = session.next_marker()
        self.input = _input_for(model, marker)
        self.request_id = ""
        self.urls: dict[str, str] = {}
        self.submitted_at = 0.0
        # Two-sided runs: the job's record, and every answer it got (media without
        # their bytes) to search for the upstream key when it ends.
        self.record = (
            CustomerJob(marker, model.endpoint_id, copy.deepcopy(self.input))
            if marker is not None
            else None
        )
        self.answers: list[Exchange] = []
        self.submit_answer: Exchange | None = None

    # -- plumbing --------------------------------------------------------------

    def judged(self, *findings: Finding) -> list[Finding]:
        """Count `findings` in the ledger; return them."""
        for finding in findings:
            self.ledger.judged(self._result(finding))
        return list(findings)

    def _result(self, finding: Finding) -> CheckResult:
        secrets = self.session.secrets
        reason = (
            f"{finding.reason} (request {self.request_id})" if self.request_id else finding.reason
        )
        return CheckResult(
            "load",
            self.model.endpoint_id,
            finding.check,
            finding.verdict,
            reason,
            tuple(e.evidence(secrets) for e in finding.exchanges),
        )

    def call(
        self,
        step: str,
        method: str,
        url: str,
        *,
        body: Any = None,
        auth: bool = True,
        fine: Collection[int] = (),
    ) -> Exchange:
        """One request, named `step` in Locust's statistics; never raises for HTTP trouble.
        `fine`: error statuses that are a success here (in Locust's statistics too)."""
        headers = self.session.authorization() if auth else {}
        with self.user.client.request(
            method,
            url,
            name=step,
            headers=headers,
            json=body,
            timeout=self.config.request_timeout,
            catch_response=True,
        ) as response:
            if response.status_code in fine:
                response.success()
            answer = _exchange(method, url, response)
        self._keep(answer, media=step == "media")
        return answer

    def _keep(self, answer: Exchange, *, media: bool = False) -> None:
        """Keep an answer for the key search of a two-sided run (media: headers only)."""
        if self.record is not None:
            kept = Exchange(answer.method, answer.url, answer.status_code, answer.headers)
            self.answers.append(kept if media else answer)

    def backoff(self, answer: Exchange, deadline: float) -> bool:
        """After a 429: count it and wait as asked (within `deadline`). False: not a 429."""
        if answer.status_code != 429:
            return False
        reason = f"429 Too Many Requests (Retry-After: {answer.header('retry-after')})"
        self.judged(Finding.of("rate-limited", Verdict.FAIL, reason, answer))
        try:
            wait = float(answer.header("retry-after") or self.config.poll_interval)
        except ValueError:
            wait = self.config.poll_interval
        gevent.sleep(max(0.0, min(wait, MAX_RETRY_AFTER, deadline - time.monotonic())))
        return True

    # -- the flow ----------------------------------------------------------------

    def run(self) -> None:
        """The whole job; its fate goes to the ledger exactly once."""
        fate: str | None = None
        try:
            if not self.submit():
                fate = "rejected"
                return
            self.ledger.accepted += 1
            if self.session.cancel_next():
                self.cancel()
                fate = "cancelled"
                return
            self.wait()
            output, answer = self.result()
            self.media(output, answer)
            fate = "delivered"
        except _Lost as lost:
            self.ledger.lose(lost.kind, self._result(lost.finding))
            fate = "lost"
        finally:
            # No fate: the run ended (this greenlet was killed) before the job did.
            self.ledger.ended(fate or "unfinished")
            self._finish_record()

    def _finish_record(self) -> None:
        """Search the job's answers for the upstream key; hand its record to the ledger."""
        record = self.record
        if record is None:
            return
        keys = self.session.upstream_keys
        if record.accepted and keys is not None:
            record.leak_scanned = True
            record.leaks = leaked(customer_texts(self.answers), set(keys))
            if record.leaks:
                where = record.leaks[0]
                shown = next(a for a in self.answers if f"{a.method} {a.url}" in where)
                record.evidence["key-leak"] = self._shown(shown)
        self.ledger.record(record)

    def _shown(self, answer: Exchange) -> dict[str, Any]:
        """An answer as record evidence: the customer's key masked, and the upstream
        key too (known by fingerprint only, so every matching token is masked)."""
        data = answer.evidence(self.session.secrets).to_json()
        keys = self.session.upstream_keys or frozenset()
        for part in ("url", "excerpt"):
            data[part] = mask_fingerprinted(data[part], keys)
        return data

    def _learn(self) -> None:
        """The first accepted jobs read their upstream request: the upstream key's
        fingerprints, and proof the upstream is the mock (else the run halts: its
        submits might go to a real, billing upstream)."""
        assert self.record is not None
        if self.session.upstream_keys is not None or self.ledger.halted:
            return
        found = self.session.learn_upstream_key(self.record.marker)
        if found is not None and not any(entry.billable for entry in found):
            control = self.config.upstream_control
            reason = (
                f"the intermediary accepted job {self.record.marker} (request"
                f" {self.request_id}), but nothing holding its marker reached the mock at"
                f" {control}: is the mock its upstream? No further job is started"
            )
            self.ledger.halted = reason
            self.judged(Finding.of("upstream-is-mock", Verdict.FAIL, reason))

    def cancel(self) -> None:
        """Cancel the job just accepted: 202 CANCELLATION_REQUESTED, or 400
        ALREADY_COMPLETED when it was quicker (both fine for the customer)."""
        answer = self.submit_answer
        returned = judge.submit.returned_urls(answer).get("cancel") if answer else None
        url = self._url(returned, "cancel")
        # 400 ALREADY_COMPLETED: the job was quicker than its customer (fine).
        answer = self.call("cancel", "PUT", url, fine=(400,))
        if self.backoff(answer, time.monotonic()):
            answer = self.call("cancel", "PUT", url, fine=(400,))  # a 429 cancelled nothing
        finding = judge.requests.cancel_requested(answer)
        if finding is not None:
            self.judged(finding)
        if self.record is not None:
            self.record.cancelled = True

    def submit(self) -> bool:
        answer = self.call(
            "submit", "POST", f"{self.base}/{self.model.endpoint_id}", body=self.input
        )
        self.submit_answer = answer
        if self.record is not None:
            self.record.evidence["submit"] = self._shown(answer)
        if answer.status_code == 429:
            self.backoff(answer, time.monotonic())  # counted, not retried: nothing was queued
            return False
        accepted = self.judged(judge.submit.accepted(answer))[0]
        request_id = judge.submit.request_id_of(answer)
        if accepted.failed or request_id is None:
            return False
        self.request_id = request_id
        self.judged(
            judge.submit.url_shape(answer, self.app_id),
            judge.submit.url_origin(answer, self.base),
        )
        returned = judge.submit.returned_urls(answer)
        self.urls = {
            "status": self._url(returned["status"], "status"),
            "response": self._url(returned["response"], "result"),
        }
        self.submitted_at = time.monotonic()
        if self.record is not None:
            self.record.accepted = True
            self.record.request_id = request_id
            self._learn()
        return True

    def _url(self, returned: Any, action: str) -> str:
        """A returned URL moved onto the base URL, or the one fal's rule builds."""
        if isinstance(returned, str) and returned.startswith(("http://", "https://")):
            return rewrite_url(returned, self.base)
        return self.base + request_path(self.app_id, self.request_id, action)  # type: ignore[arg-type]

    def wait(self) -> None:
        """Until COMPLETED: by the stream for a share of jobs (falling back to polls
        when the stream fails), else by polls; lost after the job timeout."""
        deadline = self.submitted_at + self.config.job_timeout
        if random.random() < self.config.stream_share and self.stream(deadline):
            return
        self.poll(deadline)

    def _completed(self) -> None:
        elapsed = (time.monotonic() - self.submitted_at) * 1000
        self.ledger.completed += 1
        self.user.environment.events.request.fire(
            request_type=JOB_REQUEST_TYPE,
            name=TIME_TO_COMPLETE,
            response_time=elapsed,
            response_length=0,
            exception=None,
            context={},
        )

    def poll(self, deadline: float) -> None:
        answers: list[Exchange] = []
        url = f"{self.urls['status']}?logs=1"
        while True:
            answer = self.call("status", "GET", url)
            state = judge.status.status_of(answer)
            if state is not None:
                answers.append(answer)
                if state == "COMPLETED":
                    break
            elif not self.backoff(answer, deadline):
                self.judged(judge.status.unknown_status(answer))
            if time.monotonic() >= deadline:
                finding = judge.status.not_completed(self.config.job_timeout, state, answer)
                self.judged(finding)
                raise _Lost("never-completed", finding)
            gevent.sleep(min(self.config.poll_interval, max(0.0, deadline - time.monotonic())))
        self._completed()
        self.judged(*judge.status.polls(answers, logs=True))

    def stream(self, deadline: float) -> bool:
        """Wait on the status stream; True when it reported COMPLETED."""
        url = f"{self.urls['status'].rstrip('/')}/stream?logs=1"
        record = Exchange("GET", url)
        log = judge.status.StreamLog()
        closed = False
        timer = gevent.Timeout(max(0.0, deadline - time.monotonic()))
        timer.start()
        try:
            response = self.user.client.request(
                "GET",
                url,
                name="stream",
                headers=self.session.authorization(),
                stream=True,
                timeout=self.config.request_timeout,
            )
            record = _exchange("GET", url, response, read_body=False)
            self._keep(record)  # the same object: its body is filled in below
            if record.status_code != 200:
                record.body = response.content
            else:
                closed = self._read_events(response, log)
        except gevent.Timeout as expired:
            if expired is not timer:
                raise
            if not log.completed:  # worded as live mode words it
                log.problems.append(f"no COMPLETED event within {self.config.job_timeout:g} s")
        except RequestException as exc:
            record.error = f"transport error: {type(exc).__name__}: {exc}"
            record.failure = "transport"
        finally:
            timer.cancel()
        record.body = "\n".join(str(event) for event in log.events[-3:]).encode() or record.body
        if log.completed:
            self._completed()
        if record.status_code == 429:
            self.backoff(record, deadline)
        else:
            self.judged(*judge.status.stream(record, log, closed=closed, grace=STREAM_CLOSE_GRACE))
        return log.completed

    @staticmethod
    def _read_events(response: Response, log: judge.status.StreamLog) -> bool:
        """Feed the server-sent events to `log`; True when the server closed the stream
        (within the grace after COMPLETED, or before it: then `log` is not completed)."""
        chunks = response.iter_content(chunk_size=None)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        buffer = ""

        def feed(chunk: bytes) -> None:
            nonlocal buffer
            buffer += decoder.decode(chunk)
            while "\n\n" in buffer:
                raw, buffer = buffer.split("\n\n", 1)
                log.feed(raw)

        try:
            for chunk in chunks:
                feed(chunk)
                if log.completed:
                    break
            else:
                return True
            grace = gevent.Timeout(STREAM_CLOSE_GRACE)
            grace.start()
            try:
                for chunk in chunks:
                    feed(chunk)  # anything after COMPLETED is a problem the log notes
                return True
            except gevent.Timeout as expired:
                if expired is not grace:
                    raise
                return False
            finally:
                grace.cancel()
        finally:
            response.close()

    def result(self) -> tuple[dict[str, Any], Exchange]:
        deadline = time.monotonic() + self.config.job_timeout
        while True:
            answer = self.call("result", "GET", self.urls["response"])
            if not self.backoff(answer, deadline) or time.monotonic() >= deadline:
                break
        found = self.judged(judge.output.result(answer, self.request_id))[0]
        output = answer.json_object()
        if output is None or answer.status_code != 200:
            raise _Lost("result-missing", found)
        if found.failed:  # 200, but tagged with another request's id
            raise _Lost("result-crossed", found)
        own = self._own_result(answer)
        self.judged(judge.output.output_schema(answer, self.model.output_schema))
        fidelity = self.judged(*judge.output.fidelity(self.model, self.input, output, answer))
        crossed = [f for f in fidelity if f.check == "seed-echo" and f.failed]
        # The input's unique seed came back as another one: another job's result,
        # unless the result holds this job's own marker (then the seed was lost on
        # the way, which the two-sided checks show as what it is).
        if crossed and not own:
            raise _Lost("result-crossed", crossed[0])
        return output, answer

    def _own_result(self, answer: Exchange) -> bool:
        """Two-sided runs: does the result hold this job's marker and no other job's?
        (Another job's marker makes the job lost as crossed.)"""
        record, prefix = self.record, self.config.marker_prefix
        if record is None or prefix is None:
            return False
        text = answer.body.decode("utf-8", "replace")
        record.result_read = True
        record.foreign = foreign_markers(text, prefix, record.marker)
        if record.foreign:
            record.evidence["customer-isolation"] = self._shown(answer)
            reason = f"the result holds the input of another job ({record.foreign[0]})"
            raise _Lost(
                "result-crossed", Finding.of("customer-isolation", Verdict.FAIL, reason, answer)
            )
        return record.marker in text

    def media(self, output: dict[str, Any], answer: Exchange) -> None:
        fetched = [
            # Media are fetched as a browser would: without the Authorization header.
            (item, self.call("media", "GET", str(item["url"]), auth=False))
            for item in media_objects(output)
        ]
        download = self.judged(judge.output.media_download(fetched))[0]
        if download.failed:
            raise _Lost("media-failed", download)
        self.judged(judge.output.media_bytes(fetched))


def _input_for(model: Model, marker: str | None = None) -> dict[str, Any]:
    """The model's first example input, with a seed of its own when the model takes one
    (a result that comes back with another seed belongs to another request), and in a
    two-sided run the job's `marker` at the end of the prompt (the mock counts what
    reached it by marker)."""
    data: dict[str, Any] = copy.deepcopy(model.examples[0]["input"]) if model.examples else {}
    if "seed" in model.input_schema.get("properties", {}):
        data["seed"] = random.randrange(1, 2**31)
    if marker is not None:
        data["prompt"] = f"{data.get('prompt') or 'a load test'} [{marker}]"
    return data


def _exchange(method: str, url: str, response: Any, *, read_body: bool = True) -> Exchange:
    """What came back, as live mode's `Exchange` (Locust answers a connection failure
    with a response whose `status_code` is 0 and whose `error` says why)."""
    error = getattr(response, "error", None)
    code = getattr(response, "status_code", 0) or None
    if code is None:
        failure: Failure = "timeout" if isinstance(error, Timeout) else "connect"
        reason = f"{'timed out' if failure == 'timeout' else 'connection failed'}: {error}"
        return Exchange(method, url, error=reason, failure=failure)
    body = (response.content or b"") if read_body else b""
    return Exchange(method, url, code, response.headers, body)
