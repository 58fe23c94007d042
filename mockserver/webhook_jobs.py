"""Which jobs owe a webhook, and handing each to the dispatcher when it ends.

Dependencies point one way: the queue engine reports every job that ends
(its `on_finish` event), `WebhookJobs` turns the ones that asked for a webhook
into a delivery on the `WebhookDispatcher`, which only signs and sends. Nothing
here calls back into the engine or the mock: the engine replays time lazily,
so whoever pumps deliveries (`FalMock.deliver_webhooks`) first brings the
engine up to date, and asks `awaiting` whether that is worth doing.
"""

from __future__ import annotations

from collections.abc import Callable

from mockserver.errors import JobFailure
from mockserver.queue import Job
from mockserver.webhooks import WebhookDispatcher, webhook_body


class WebhookJobs:
    """The webhooks that running jobs will owe, scheduled as each job ends.

    `failure_of(job)` says how a finished job failed (None for success): the
    webhook carries that error, or the job's result.
    """

    def __init__(
        self, dispatcher: WebhookDispatcher, failure_of: Callable[[Job], JobFailure | None]
    ) -> None:
        self._dispatcher = dispatcher
        self._failure_of = failure_of
        self._urls: dict[str, str] = {}  # job id -> webhook URL, until the job ends

    @property
    def awaiting(self) -> int:
        """Jobs with a webhook that have not ended yet."""
        return len(self._urls)

    def expect(self, job_id: str, url: str) -> None:
        """`job_id` will owe a webhook to `url` when it ends."""
        self._urls[job_id] = url

    def finished(self, job: Job) -> None:
        """The engine's `on_finish` event: schedule the job's webhook (any ending)."""
        url = self._urls.pop(job.id, None)
        if url is None:
            return
        failure = self._failure_of(job)
        if failure is None:
            output = job.result if isinstance(job.result, bytes) else None
            body = webhook_body(job.id, output=output)
        else:
            body = webhook_body(job.id, error_status=failure.status_code, error_body=failure.body())
        self._dispatcher.enqueue(job.id, job.tenant, url, body)

    def reset(self) -> None:
        """Forget every expected webhook (the jobs are gone)."""
        self._urls.clear()
