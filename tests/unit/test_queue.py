from __future__ import annotations

from typing import Any

import pytest

from mockserver.clock import ManualClock
from mockserver.outcomes import LogLine, Outcome
from mockserver.queue import PURGE_BATCH, Job, Priority, QueueEngine, QueueFull, Retention, State


def _submit(
    engine: QueueEngine,
    *,
    app: str = "a/b",
    priority: Priority = "normal",
    queue: float = 0.0,
    run: float = 10.0,
    tenant: str = "t",
    **extra: Any,
) -> tuple[Job, int]:
    return engine.submit(
        tenant=tenant,
        endpoint_id=app + "/x",
        app_id=app,
        priority=priority,
        queue_seconds=queue,
        run_seconds=run,
        outcome=extra.pop("outcome", Outcome()),
        logs=extra.pop("logs", ()),
        **extra,
    )


def test_fifo_with_one_runner(clock: ManualClock) -> None:
    engine = QueueEngine(clock, runners=1)
    jobs = [_submit(engine)[0] for _ in range(3)]
    assert [j.state for j in jobs] == [State.IN_PROGRESS, State.IN_QUEUE, State.IN_QUEUE]
    assert [engine.queue_position(j) for j in jobs[1:]] == [0, 1]
    clock.advance(10)
    assert [j.state for j in jobs] == [State.COMPLETED, State.IN_PROGRESS, State.IN_QUEUE]
    clock.advance(25)  # both remaining runs fit, back to back
    assert all(j.state is State.COMPLETED for j in jobs)
    assert jobs[2].started_at == jobs[1].ended_at == clock.now() - 15


def test_runners_run_in_parallel_and_apps_are_independent(clock: ManualClock) -> None:
    engine = QueueEngine(clock, runners=2)
    a1, a2, a3 = (_submit(engine)[0] for _ in range(3))
    other, position = _submit(engine, app="c/d")
    assert (a1.state, a2.state, a3.state) == (State.IN_PROGRESS, State.IN_PROGRESS, State.IN_QUEUE)
    assert other.state is State.IN_PROGRESS and position == 0


def test_queue_time_delays_the_start(clock: ManualClock) -> None:
    engine = QueueEngine(clock)
    job, position = _submit(engine, queue=2, run=3)
    assert position == 0 and job.state is State.IN_QUEUE
    clock.advance(1.999)
    assert job.state is State.IN_QUEUE
    clock.advance(0.001)
    assert job.state is State.IN_PROGRESS
    clock.advance(3)
    assert job.state is State.COMPLETED and job.ended_at == job.submitted_at + 5


def test_low_priority_waits_and_its_position_never_increases(clock: ManualClock) -> None:
    engine = QueueEngine(clock)
    _submit(engine)  # occupies the runner
    low, low_position = _submit(engine, priority="low")
    normal, normal_position = _submit(engine)
    assert (low_position, normal_position) == (0, 0)
    # the normal job overtook the low one, but its reported position stays 0
    assert engine.queue_position(low) == 0
    clock.advance(10)
    assert normal.state is State.IN_PROGRESS and low.state is State.IN_QUEUE


def test_cancel_queued_and_running(clock: ManualClock) -> None:
    engine = QueueEngine(clock)
    running = _submit(engine)[0]
    queued = _submit(engine)[0]
    behind = _submit(engine)[0]
    assert engine.queue_position(behind) == 1
    assert engine.cancel(queued)
    assert queued.state is State.COMPLETED and queued.cancelled
    assert engine.queue_position(behind) == 0
    assert engine.cancel(running)
    assert running.cancelled and behind.state is State.IN_PROGRESS
    clock.advance(10)
    assert not engine.cancel(behind)


def test_expiry_purges_jobs_and_honours_large_results(clock: ManualClock) -> None:
    sizes = {"small": 100, "large": 20_000}
    purged: list[str] = []

    def complete(job: Job) -> int:
        return sizes[job.payload]

    engine = QueueEngine(
        clock,
        runners=2,
        retention=Retention(seconds=3600, large_seconds=360, large_bytes=10 * 1024),
        on_complete=complete,
        on_purge=lambda job: purged.append(job.id),
    )
    small = _submit(engine, run=0, payload="small")[0]
    large = _submit(engine, run=0, payload="large")[0]
    assert small.payload is None  # inputs are dropped once the result exists
    clock.advance(359)
    assert engine.get(large.id) is not None
    clock.advance(1)
    assert engine.get(large.id) is None and purged == [large.id]
    clock.advance(3600 - 360)
    assert engine.get(small.id) is None and len(engine) == 0


def test_memory_stays_bounded_under_sustained_traffic(clock: ManualClock) -> None:
    engine = QueueEngine(clock, runners=4, retention=Retention(seconds=60, large_seconds=60))
    for _ in range(50):
        for _ in range(20):
            _submit(engine, run=0.5)
        clock.advance(10)
    # 20 jobs every 10 s with a 60 s retention: never more than ~7 batches alive
    assert len(engine) <= 140


def test_tenants_only_see_their_jobs(clock: ManualClock) -> None:
    engine = QueueEngine(clock)
    job = _submit(engine, tenant="alice")[0]
    assert engine.get(job.id, "alice") is job
    assert engine.get(job.id, "bob") is None


def test_a_job_that_started_in_time_is_not_cut_off(clock: ManualClock) -> None:
    engine = QueueEngine(clock)
    job = _submit(engine, run=30, timeout=5.0)[0]
    clock.advance(29)
    assert job.state is State.IN_PROGRESS and not job.timed_out
    clock.advance(1)
    assert job.state is State.COMPLETED and not job.failed


def test_a_missed_start_deadline_ends_the_job_at_the_deadline(clock: ManualClock) -> None:
    engine = QueueEngine(clock, runners=1)
    busy = [_submit(engine, run=30)[0] for _ in range(2)]
    late = _submit(engine, run=5, timeout=2.0)[0]
    clock.advance(1.9)
    assert late.state is State.IN_QUEUE
    clock.advance(0.1)
    # ended at its deadline, not when a runner freed (30 s later)
    assert late.state is State.COMPLETED and late.timed_out and late.failed
    assert late.ended_at == late.submitted_at + 2.0 and late.started_at is None
    assert busy[1].state is State.IN_QUEUE and engine.queue_position(busy[1]) == 0


def test_a_job_starting_exactly_on_its_deadline_started_in_time(clock: ManualClock) -> None:
    engine = QueueEngine(clock, runners=1)
    _submit(engine, run=3)
    job = _submit(engine, run=1, timeout=3.0)[0]
    clock.advance(3)
    assert job.state is State.IN_PROGRESS and not job.timed_out


def test_logs_appear_as_the_run_progresses(clock: ManualClock) -> None:
    engine = QueueEngine(clock)
    logs = (LogLine(0.0, "start"), LogLine(0.5, "half"), LogLine(1.0, "done"))
    job = _submit(engine, run=4, logs=logs)[0]
    assert [line.message for _, line in job.visible_logs(clock.now())] == ["start"]
    clock.advance(2)
    assert [line.message for _, line in job.visible_logs(clock.now())] == ["start", "half"]
    clock.advance(2)
    assert len(job.visible_logs(clock.now())) == 3


def test_queue_full_and_bad_settings(clock: ManualClock) -> None:
    engine = QueueEngine(clock, max_jobs=1)
    _submit(engine)
    with pytest.raises(QueueFull):
        _submit(engine)
    with pytest.raises(ValueError, match="runners"):
        QueueEngine(clock, runners=0)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_failed_outcome_has_no_result(clock: ManualClock) -> None:
    calls: list[Job] = []

    def complete(job: Job) -> int:
        calls.append(job)
        return 0

    engine = QueueEngine(clock, on_complete=complete)
    job = _submit(engine, run=0, outcome=Outcome.infra_error("runner_disconnected"))[0]
    assert job.failed and calls == []


def test_queue_positions_match_a_walk_of_the_queue_through_cancels_and_priorities(
    clock: ManualClock,
) -> None:
    """Positions come from sequence numbers, not a walk of the queue: check them
    against the walk (normal jobs first, each priority FIFO) after every step of
    a long mixed run of submits, cancels (head, middle, tail), deadlines and starts."""
    import random

    rng = random.Random(15)
    engine = QueueEngine(clock, runners=2)
    submitted: list[Job] = []
    best: dict[str, int] = {}
    for step in range(600):
        roll = rng.random()
        queued = [j for j in submitted if j.state is State.IN_QUEUE]
        if roll < 0.55 or not queued:
            app = rng.choice(["a/b", "c/d"])
            priority: Priority = "low" if rng.random() < 0.3 else "normal"
            timeout = rng.choice([None, None, None, 4.0])
            job, _ = _submit(
                engine, app=app, priority=priority, run=rng.choice([1.0, 3.0]), timeout=timeout
            )
            submitted.append(job)
        elif roll < 0.8:
            assert engine.cancel(rng.choice([queued[0], queued[-1], rng.choice(queued)]))
        else:
            clock.advance(rng.choice([0.5, 1.0, 2.0]))
        for job in submitted:
            if job.state is not State.IN_QUEUE:
                continue
            same_app = [j for j in submitted if j.app_id == job.app_id]
            normal = [j for j in same_app if j.state is State.IN_QUEUE and j.priority == "normal"]
            low = [j for j in same_app if j.state is State.IN_QUEUE and j.priority == "low"]
            walk = normal.index(job) if job.priority == "normal" else len(normal) + low.index(job)
            # fal documents positions as never increasing: the best seen is reported
            best[job.id] = min(best.get(job.id, walk), walk)
            assert engine.queue_position(job) == best[job.id], f"step {step}"
    assert any(j.cancelled for j in submitted) and any(j.timed_out for j in submitted)
    assert any(j.priority == "low" and j.state is State.COMPLETED for j in submitted)


def test_a_mass_expiry_is_purged_in_bounded_batches_and_hidden_at_once(
    clock: ManualClock,
) -> None:
    purged: list[str] = []
    engine = QueueEngine(
        clock, runners=3000, retention=Retention(seconds=60), on_purge=lambda j: purged.append(j.id)
    )
    jobs = [_submit(engine, run=0.0)[0] for _ in range(PURGE_BATCH * 5 // 2)]
    clock.advance(61)  # every job expires at the same instant
    # one bounded batch was dropped; the rest waits for later requests...
    assert len(purged) == PURGE_BATCH and len(engine) == len(jobs) - PURGE_BATCH
    # ...but none is visible any more
    assert engine.get(jobs[-1].id) is None and engine.jobs() == []
    while len(engine):
        before = len(engine)
        engine.sync()
        assert before - len(engine) <= PURGE_BATCH  # never the whole backlog in one pass
    assert sorted(purged) == sorted(j.id for j in jobs)


def test_a_synchronous_run_waits_in_a_queue_of_its_own(clock: ManualClock) -> None:
    engine = QueueEngine(clock, runners=1)
    queued = [_submit(engine)[0] for _ in range(2)]  # the app's one runner is busy
    run, _ = _submit(engine, run=0.0, sync=True)
    assert run.state is State.COMPLETED  # neither waited behind them...
    assert run.app_id == "a/b" and run.sync  # ...nor renamed its app to do so
    assert [j.state for j in queued] == [State.IN_PROGRESS, State.IN_QUEUE]
    assert engine.queue_position(queued[1]) == 0  # ...nor took a place in their queue
