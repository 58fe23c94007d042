"""A reference client wired into an in-process mock whose clock it drives."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from mockserver import FalMock, create_app
from mockserver.client import ClientSettings, FalClient
from mockserver.transport import SyncAppTransport

BASE = "http://mock.test"


class Sleeper:
    """Stands in for time.sleep: records each wait and moves the mock's clock."""

    def __init__(self, mock: FalMock) -> None:
        self.mock = mock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.mock.advance(seconds)


@pytest.fixture
def sleeper(mock: FalMock) -> Sleeper:
    return Sleeper(mock)


@pytest.fixture
def fal(mock: FalMock, sleeper: Sleeper) -> Iterator[FalClient]:
    transport = SyncAppTransport(create_app(mock))
    settings = ClientSettings(base_url=BASE, key="client-secret-key")
    with FalClient(
        settings, transport=transport, sleep=sleeper, monotonic=mock.clock.now, rng=random.Random(0)
    ) as client:
        yield client
    transport.close()
