"""The queue's state machine (tests/property) against three replicas sharing one
Redis, every request sent to the next replica in turn: the client must not be
able to tell them from one process."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

import httpx
import redis
from hypothesis import settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.redis_store import RedisStore
from mockserver.transport import AppTransport, SyncAppTransport
from tests.property.test_stateful import CATALOG, STEPS, QueueMachine

# Bounded: `make test` stays quick; `make test-deep` runs more programs.
EXAMPLES = int(os.environ.get("ROUND_ROBIN_EXAMPLES", "4"))


class RoundRobin(httpx.BaseTransport):
    """Each request to the next transport in turn."""

    def __init__(self, transports: Sequence[httpx.BaseTransport]) -> None:
        self._transports = list(transports)
        self._next = itertools.cycle(self._transports)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return next(self._next).handle_request(request)

    def close(self) -> None:
        for transport in self._transports:
            transport.close()


class AsyncRoundRobin(httpx.AsyncBaseTransport):
    """Each request to the next transport in turn (the async client's)."""

    def __init__(self, transports: Sequence[httpx.AsyncBaseTransport]) -> None:
        self._next = itertools.cycle(list(transports))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)


class SharedClock(ManualClock):
    """The machine's hand on the replicas' one manual clock: each step goes to the
    next replica (into the shared log); every replica then catches up, as its
    open status streams would by themselves a moment later."""

    def __init__(self, mocks: Sequence[FalMock]) -> None:
        super().__init__()
        self._mocks = list(mocks)
        self._next = itertools.cycle(self._mocks)

    def now(self) -> float:
        self._mocks[0].refresh()
        return self._mocks[0].clock.now()

    def advance(self, seconds: float) -> float:
        now = next(self._next).advance(seconds)
        self._catch_up()
        return now

    def set(self, timestamp: float) -> None:
        next(self._next).set_time(timestamp)
        self._catch_up()

    def _catch_up(self) -> None:
        for mock in self._mocks:
            mock.refresh()


class RoundRobinMachine(QueueMachine):
    """The whole state machine, served by three replicas over one Redis."""

    redis_url = ""

    def serve(
        self, config: MockConfig
    ) -> tuple[ManualClock, FalMock, httpx.BaseTransport, httpx.AsyncBaseTransport]:
        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()  # each program starts from an empty queue
        client.close()
        self.replicas = [
            FalMock(config, catalog=CATALOG, store=RedisStore(self.redis_url, manual_clock=True))
            for _ in range(3)
        ]
        apps = [create_app(mock) for mock in self.replicas]
        return (
            SharedClock(self.replicas),
            self.replicas[0],  # faults and outcomes scripted here reach all three
            RoundRobin([SyncAppTransport(app) for app in apps]),
            AsyncRoundRobin([AppTransport(app) for app in apps]),
        )

    def teardown(self) -> None:
        super().teardown()
        for mock in self.replicas:
            mock.store.close()

    @invariant()
    def no_failure_that_was_not_injected(self) -> None:
        # It reads the jobs and the request log of one replica directly.
        self.mock.refresh()
        super().no_failure_that_was_not_injected()


def test_three_replicas_answer_every_program_as_one_process(redis_url: str) -> None:
    RoundRobinMachine.redis_url = redis_url
    run_state_machine_as_test(
        RoundRobinMachine,
        settings=settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None),
    )
