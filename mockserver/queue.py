"""The simulated queue: jobs, their state machine, runners, priorities, expiry.

Time is lazy: nothing runs in the background. Every read first calls `sync`,
which replays the events (dispatch, completion, expiry) that the clock says
have happened since the last read, in time order. That makes a manual clock
exact and a real clock cheap.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mockserver.clock import Clock
from mockserver.errors import MockError
from mockserver.notify import Notifier
from mockserver.outcomes import LogLine, Outcome
from mockserver.priority import Priority

#: Which queue of the engine a job is in: (app id, synchronous run?).
_LaneKey = tuple[str, bool]

__all__ = ["Job", "Priority", "QueueEngine", "QueueFull", "Retention", "State"]
#: Expired jobs dropped per `sync` at most: a request that lands on a mass
#: expiry waits for one batch, not the whole backlog (1,000 took up to 22 ms on
#: the shared 2-core machine, past the 20 ms goal; see benchmarks/RESULTS.md).
PURGE_BATCH = 250


class State(StrEnum):
    """The three states the protocol knows (there is no FAILED: see `Job.error`)."""

    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished jobs (and their media) are kept, as fal documents it."""

    seconds: float = 3600.0
    large_seconds: float = 360.0
    large_bytes: int = 10 * 1024

    def ttl(self, result_bytes: int) -> float:
        """Retention for a result body of `result_bytes`."""
        return self.large_seconds if result_bytes >= self.large_bytes else self.seconds


@dataclass(slots=True, eq=False)
class Job:
    """One request's life. Mutated only by `QueueEngine` under its lock."""

    id: str
    tenant: str
    endpoint_id: str
    app_id: str
    priority: Priority
    submitted_at: float
    queue_seconds: float
    run_seconds: float
    outcome: Outcome
    logs: tuple[LogLine, ...]
    timeout: float | None = None  # time-to-start deadline, seconds after submit
    #: A synchronous run (fal.run): it waits in a queue of its own, apart from
    #: its app's queued requests, which it neither delays nor waits behind.
    sync: bool = False
    payload: Any = None
    state: State = State.IN_QUEUE
    started_at: float | None = None
    ends_at: float | None = None
    ended_at: float | None = None
    cancelled: bool = False
    timed_out: bool = False
    result: Any = None
    expires_at: float | None = None
    best_position: int = 2**31
    queue_seq: int = 0  # order within its app's queue of its priority (see `_Lane`)
    # A tuple, not a list: most jobs have one file or none, and a job is kept
    # an hour after it ends (bytes per finished job are measured in the bench).
    media: tuple[str, ...] = ()

    @property
    def lane(self) -> _LaneKey:
        """The queue the job waits in: its app's, or its app's synchronous runs'."""
        return (self.app_id, self.sync)

    @property
    def eligible_at(self) -> float:
        """When the job may first leave the queue."""
        return self.submitted_at + self.queue_seconds

    @property
    def start_deadline(self) -> float:
        """When the job must have started by (X-Fal-Request-Timeout), or infinity."""
        return math.inf if self.timeout is None else self.submitted_at + self.timeout

    @property
    def failed(self) -> bool:
        """Ended by a model or infrastructure error (cancellation is not failure)."""
        return (
            self.state is State.COMPLETED
            and not self.cancelled
            and (self.timed_out or self.outcome.failed)
        )

    def visible_logs(self, now: float) -> list[tuple[float, LogLine]]:
        """(timestamp, line) for every log line emitted by `now`."""
        if self.started_at is None:
            return []
        until = min(now, self.ended_at if self.ended_at is not None else now)
        lines = []
        for line in self.logs:
            at = self.started_at + line.at * self.run_seconds
            if at > until:
                break
            lines.append((at, line))
        return lines


class _Lane:
    """One priority's FIFO of queued jobs, with positions in O(log cancels).

    Each job entering the lane takes the next sequence number. Every job before
    the head has left, so the jobs ahead of one are its distance from the head
    less the jobs between that left from the middle (cancelled, or missed their
    start deadline): `gaps`, sorted, pruned as the head passes them. Reading a
    position never walks the queue, so status and submit cost the same at any depth.
    """

    __slots__ = ("gaps", "jobs", "next_seq")

    def __init__(self) -> None:
        self.jobs: deque[Job] = deque()
        self.next_seq = 0
        self.gaps: list[int] = []

    def __len__(self) -> int:
        return len(self.jobs)

    def append(self, job: Job) -> None:
        job.queue_seq = self.next_seq
        self.next_seq += 1
        self.jobs.append(job)

    def remove(self, job: Job) -> None:
        if self.jobs[0] is job:
            self.jobs.popleft()
        else:
            # Rare (cancel, missed deadline): O(depth) like deque.remove itself.
            self.jobs.remove(job)
            bisect.insort(self.gaps, job.queue_seq)

    def position(self, job: Job) -> int:
        head = self.jobs[0].queue_seq
        if self.gaps and self.gaps[0] < head:
            del self.gaps[: bisect.bisect_left(self.gaps, head)]
        return job.queue_seq - head - bisect.bisect_left(self.gaps, job.queue_seq)


class _AppQueue:
    """FIFO queue and runners of one app (``[namespace/]owner/alias``)."""

    __slots__ = ("deadlines", "low", "next_at", "normal", "running", "time")

    def __init__(self) -> None:
        self.normal = _Lane()
        self.low = _Lane()
        self.running: list[Job] = []
        self.time = -math.inf
        # When this app's next event is due, as of its last advance. Every
        # change to the app ends with an advance, so until then `sync` can
        # skip it without looking at its jobs (the hot path under load).
        self.next_at = -math.inf
        # (start deadline, seq, job) of queued jobs that have one; entries of
        # jobs that started or ended meanwhile are dropped lazily.
        self.deadlines: list[tuple[float, int, Job]] = []

    def next_deadline(self) -> Job | None:
        """The queued job whose start deadline comes first."""
        while self.deadlines and self.deadlines[0][2].state is not State.IN_QUEUE:
            heapq.heappop(self.deadlines)
        return self.deadlines[0][2] if self.deadlines else None

    def head(self) -> Job | None:
        if self.normal:
            return self.normal.jobs[0]
        return self.low.jobs[0] if self.low else None

    def position(self, job: Job) -> int:
        if job.priority == "normal":
            return self.normal.position(job)
        return len(self.normal) + self.low.position(job)

    def remove(self, job: Job) -> None:
        (self.normal if job.priority == "normal" else self.low).remove(job)

    def idle(self) -> bool:
        return not (self.normal or self.low or self.running)


class QueueFull(MockError):
    """The engine holds its maximum number of jobs."""

    def __init__(self) -> None:
        super().__init__("Too many requests in the queue; try again later")


class QueueEngine:
    """All jobs of one mock server, scheduled against one clock.

    `on_complete(job)` is called (under the lock) when a job finishes without
    being cancelled, to fill `job.result`; it returns the result's size in
    bytes, which decides its retention. `on_purge(job)` is called when a job
    expires, so media can be dropped with it. `on_finish(job)` is called
    (under the lock) after every job ends, however it ended.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        runners: int = 1,
        retention: Retention | None = None,
        max_jobs: int = 1_000_000,
        on_complete: Callable[[Job], int] | None = None,
        on_purge: Callable[[Job], None] | None = None,
        on_finish: Callable[[Job], None] | None = None,
    ) -> None:
        if runners < 1:
            raise ValueError("runners must be at least 1")
        self.clock = clock
        self.runners = runners
        self.retention = retention or Retention()
        self.max_jobs = max_jobs
        self.changed = Notifier()
        self._on_complete = on_complete or (lambda job: 0)
        self._on_purge = on_purge or (lambda job: None)
        self._on_finish = on_finish or (lambda job: None)
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._apps: dict[_LaneKey, _AppQueue] = {}
        self._active: set[_LaneKey] = set()
        # (expires at, job id): ids are unique, so they settle ties without a
        # sequence number (memory per finished job is a goal: see the bench).
        self._expiry: list[tuple[float, str]] = []
        self._seq = itertools.count()
        clock.subscribe(self._on_clock_jump)

    # -- reading ---------------------------------------------------------------

    def get(self, request_id: str, tenant: str | None = None) -> Job | None:
        """The job with this id, if it exists, has not expired and belongs to `tenant`."""
        purged = False
        with self._lock:
            job = self._jobs.get(request_id)
            if job is not None and job.state is State.COMPLETED:
                # A finished job never changes again (expiry is checked below):
                # only due purges are worth the time, not replaying every app.
                purged = self._purge(self.clock.now())
            else:
                self.sync()
                job = self._jobs.get(request_id)
            if job is not None and tenant is not None and job.tenant != tenant:
                job = None
            expires_at = job.expires_at if job is not None else None
            if expires_at is not None and expires_at <= self.clock.now():
                job = None  # expired; not purged yet (see `_purge`)
        if purged:
            self.changed.notify()
        return job

    def find(self, request_id: str) -> Job | None:
        """The job with this id, whoever's it is, until it is purged."""
        with self._lock:
            self.sync()
            return self._jobs.get(request_id)

    def queue_position(self, job: Job) -> int:
        """Jobs ahead of `job` in its app's queue; never larger than reported before."""
        with self._lock:
            if job.state is not State.IN_QUEUE:
                return 0
            # A low-priority job can be overtaken by later normal ones; fal
            # documents the position as never increasing, so report the best seen.
            job.best_position = min(job.best_position, self._apps[job.lane].position(job))
            return job.best_position

    def next_event_at(self, app_id: str) -> float:
        """When the next start, end or missed deadline of `app_id`'s queue happens
        (infinity if none is due): until then, and unless `changed` fires, no
        queued job of that app changes state or position."""
        with self._lock:
            self.sync()
            app = self._apps.get((app_id, False))
            return math.inf if app is None else app.next_at

    def purge_expired(self) -> None:
        """Drop jobs whose retention has passed (a bounded batch), without
        replaying the queues: for reads that only care about finished jobs."""
        with self._lock:
            purged = self._purge(self.clock.now())
        if purged:
            self.changed.notify()

    def jobs(self) -> list[Job]:
        """Every live job, oldest first."""
        with self._lock:
            self.sync()
            now = self.clock.now()
            return [j for j in self._jobs.values() if j.expires_at is None or j.expires_at > now]

    def __len__(self) -> int:
        """Jobs held, expired ones not yet purged included."""
        return len(self._jobs)

    # -- writing ---------------------------------------------------------------

    def submit(
        self,
        *,
        tenant: str,
        endpoint_id: str,
        app_id: str,
        priority: Priority,
        queue_seconds: float,
        run_seconds: float,
        outcome: Outcome,
        logs: tuple[LogLine, ...],
        timeout: float | None = None,
        payload: Any = None,
        on_created: Callable[[Job], None] | None = None,
        request_id: str | None = None,
        sync: bool = False,
    ) -> tuple[Job, int]:
        """Queue a new job; returns it with its position at submit time.

        `on_created(job)` runs before the job can start, so that whatever
        `on_complete` needs is in place even when a zero-length run completes
        within this call. `request_id` is the job's id (default: a new one).
        `sync` puts it in its app's queue of synchronous runs (see `Job.sync`).
        """
        with self._lock:
            self.sync()
            if len(self._jobs) >= self.max_jobs:
                raise QueueFull
            now = self.clock.now()
            job = Job(
                id=request_id or str(uuid.uuid4()),
                tenant=tenant,
                endpoint_id=endpoint_id,
                app_id=app_id,
                priority=priority,
                submitted_at=now,
                queue_seconds=queue_seconds,
                run_seconds=run_seconds,
                outcome=outcome,
                logs=logs,
                timeout=timeout,
                payload=payload,
                sync=sync,
            )
            if on_created is not None:
                on_created(job)
            app = self._apps.setdefault(job.lane, _AppQueue())
            (app.normal if priority == "normal" else app.low).append(job)
            if timeout is not None:
                heapq.heappush(app.deadlines, (job.start_deadline, next(self._seq), job))
            self._jobs[job.id] = job
            position = self.queue_position(job)
            self._active.add(job.lane)
            self._advance_app(app, now)
        self.changed.notify()
        return job, position

    def cancel(self, job: Job) -> bool:
        """Cancel a queued or running job; False when it had already completed."""
        with self._lock:
            self.sync()
            if job.state is State.COMPLETED:
                return False
            now = self.clock.now()
            app = self._apps[job.lane]
            if job.state is State.IN_QUEUE:
                app.remove(job)
            else:
                app.running.remove(job)
            job.cancelled = True
            self._finish(job, now)
            self._advance_app(app, now)
        self.changed.notify()
        return True

    def reset(self) -> None:
        """Forget every job."""
        with self._lock:
            for job in self._jobs.values():
                self._on_purge(job)
            self._jobs.clear()
            self._apps.clear()
            self._active.clear()
            self._expiry.clear()
        self.changed.notify()

    # -- time ------------------------------------------------------------------

    def sync(self) -> None:
        """Replay every event up to the clock's current time."""
        with self._lock:
            now = self.clock.now()
            changed = False
            for lane in list(self._active):
                app = self._apps[lane]
                if app.next_at <= now:  # else nothing of this app is due yet
                    changed |= self._advance_app(app, now)
                if app.idle():
                    self._active.discard(lane)
            changed |= self._purge(now)
        if changed:
            self.changed.notify()

    def _on_clock_jump(self) -> None:
        self.sync()
        self.changed.notify()

    def _advance_app(self, app: _AppQueue, now: float) -> bool:
        changed = False
        while True:
            t, ending, t_end, head, t_start, late, t_late = self._next_event(app)
            if t > now:
                app.next_at = t
                return changed
            app.time = t
            changed = True
            # At equal times a runner frees first, then the head starts, then a
            # deadline passes: a job that starts exactly on its deadline started in time.
            if ending is not None and t_end <= t_start and t_end <= t_late:
                app.running.remove(ending)
                self._finish(ending, t)
            elif head is not None and t_start <= t_late:
                app.remove(head)
                self._start(head, t)
                app.running.append(head)
            elif late is not None:
                # Missed its time-to-start deadline while queued: it ends now,
                # on the mock clock, whatever the runners are doing.
                app.remove(late)
                late.timed_out = True
                self._finish(late, t)

    def _next_event(
        self, app: _AppQueue
    ) -> tuple[float, Job | None, float, Job | None, float, Job | None, float]:
        """(when, and the candidates with their times: the run ending first, the
        head that may start, the queued job whose deadline comes first)."""
        ending = min(app.running, key=_ends_at, default=None)
        t_end = ending.ends_at if ending is not None and ending.ends_at is not None else math.inf
        head = app.head() if len(app.running) < self.runners else None
        t_start = max(head.eligible_at, app.time) if head is not None else math.inf
        late = app.next_deadline()
        t_late = late.start_deadline if late is not None else math.inf
        return min(t_end, t_start, t_late), ending, t_end, head, t_start, late, t_late

    def _start(self, job: Job, t: float) -> None:
        job.state = State.IN_PROGRESS
        job.started_at = t
        # X-Fal-Request-Timeout is a time-to-start deadline: once running, a job
        # is never cut off by it.
        job.ends_at = t + job.run_seconds

    def _finish(self, job: Job, t: float) -> None:
        job.state = State.COMPLETED
        job.ended_at = t
        size = 0 if job.cancelled or job.failed else self._on_complete(job)
        job.payload = None  # the input is not needed any more; memory stays small
        job.expires_at = t + self.retention.ttl(size)
        heapq.heappush(self._expiry, (job.expires_at, job.id))
        self._on_finish(job)

    def _purge(self, now: float) -> bool:
        # Bounded: when a mass of jobs expires at once, each request drops at
        # most this many, so none stalls on the whole pass; `get` already hides
        # the expired ones still waiting here.
        purged = False
        for _ in range(PURGE_BATCH):
            if not (self._expiry and self._expiry[0][0] <= now):
                break
            _, job_id = heapq.heappop(self._expiry)
            job = self._jobs.pop(job_id, None)
            if job is not None:
                self._on_purge(job)
                purged = True
        return purged


def _ends_at(job: Job) -> float:
    return job.ends_at if job.ends_at is not None else math.inf
