"""Start deadlines (X-Fal-Request-Timeout) as properties of the queue engine.

Whatever the mix of jobs, runners and clock steps: a job with a deadline
either starts by it and then runs its full length, or never starts and ends
exactly at its deadline.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.clock import ManualClock
from mockserver.outcomes import Outcome
from mockserver.queue import QueueEngine, State

_jobs = st.lists(
    st.tuples(
        st.floats(0, 3),  # submitted this long after the previous job
        st.floats(0, 2),  # queue seconds
        st.floats(0, 5),  # run seconds
        st.none() | st.floats(1.01, 6),  # start deadline
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(jobs=_jobs, runners=st.integers(1, 3), step=st.floats(0.1, 2.5))
def test_a_deadline_bounds_the_start_never_the_run(
    jobs: list[tuple[float, float, float, float | None]], runners: int, step: float
) -> None:
    clock = ManualClock()
    engine = QueueEngine(clock, runners=runners)
    submitted = []
    for gap, queue_s, run_s, timeout in jobs:
        clock.advance(gap)
        job, _ = engine.submit(
            tenant="t",
            endpoint_id="a/b/c",
            app_id="a/b",
            priority="normal",
            queue_seconds=queue_s,
            run_seconds=run_s,
            outcome=Outcome(),
            logs=(),
            timeout=timeout,
        )
        submitted.append(job)
    for _ in range(50):  # in uneven steps, then far past every job's end
        clock.advance(step)
        engine.sync()
    clock.advance(1000)
    for job in submitted:
        assert job.state is State.COMPLETED
        assert job.ended_at is not None
        if job.timed_out:
            assert job.timeout is not None and job.started_at is None
            assert abs(job.ended_at - (job.submitted_at + job.timeout)) < 1e-9
        else:
            assert job.started_at is not None
            assert job.started_at >= job.eligible_at - 1e-9
            if job.timeout is not None:
                assert job.started_at <= job.submitted_at + job.timeout + 1e-9
            assert abs(job.ended_at - (job.started_at + job.run_seconds)) < 1e-9
