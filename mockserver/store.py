"""The store boundary: where every change to the mock's state goes.

A change (submit, cancel, reset, a clock step, a scripted outcome, a fault, an
upload) is an *operation*: a kind and its arguments. `FalMock` never changes
its state directly; it commits an operation to its store and the store has it
applied. The queue engine stays the single source of truth (its lazy-time
replay decides every state and position); what a store decides is *order*.

- `MemoryStore` (the default) applies each operation at once, in this process:
  one method call, nothing copied or encoded, so the in-memory mock costs what
  it always did.
- `mockserver.redis_store.RedisStore` appends it to a log in Redis; every
  replica applies the log's operations in the log's order at the log's times,
  so each one holds the same jobs in the same states and answers any request
  as a single process would.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mockserver.clock import Clock
    from mockserver.mock import RecordedRequest

#: Applies one operation (kind, arguments) to a mock's state; returns its result.
Apply = Callable[[str, tuple[Any, ...]], Any]


class StoreError(Exception):
    """A store cannot be opened or reached; the message says why (secrets removed)."""


class Store(Protocol):
    """Orders and applies the operations that change a mock's state."""

    @property
    def shared(self) -> bool:
        """True when other processes apply the same operations (replicas)."""
        ...

    @property
    def clock(self) -> Clock | None:
        """The clock this store keeps in step across replicas (None: the mock's choice)."""
        ...

    @property
    def secret(self) -> bytes:
        """A key every replica shares, for names that must come out alike in each."""
        ...

    def claim(self, name: str) -> bool:
        """True for exactly one caller across replicas (a webhook attempt is sent once)."""
        ...

    def record(self, entry: RecordedRequest) -> None:
        """Keep a received request (a shared store only: see `FalMock.record`)."""
        ...

    def recorded(self) -> list[RecordedRequest]:
        """The requests kept, oldest first."""
        ...

    def bind(self, apply: Apply) -> None:
        """Apply operations with `apply` from now on (the mock calls this once)."""
        ...

    def commit(self, kind: str, args: tuple[Any, ...]) -> Any:
        """Apply one operation in the shared order; its result in this process
        (an exception it raised here is raised again)."""
        ...

    def refresh(self) -> None:
        """Apply what other replicas committed since the last look."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MemoryStore:
    """This process is the only one: operations apply at once, in call order."""

    shared = False
    clock = None

    def __init__(self) -> None:
        self._apply: Apply | None = None
        self.secret = secrets.token_bytes(16)

    def bind(self, apply: Apply) -> None:
        """Apply operations with `apply`."""
        self._apply = apply

    def commit(self, kind: str, args: tuple[Any, ...]) -> Any:
        """Apply the operation now."""
        assert self._apply is not None, "bind the store to a mock first"
        return self._apply(kind, args)

    def refresh(self) -> None:
        """Nothing happens elsewhere."""

    def claim(self, name: str) -> bool:
        """Nobody else could take it."""
        return True

    def record(self, entry: RecordedRequest) -> None:
        """The mock keeps its own request log when alone."""
        raise NotImplementedError("FalMock keeps the request log of a MemoryStore")

    def recorded(self) -> list[RecordedRequest]:
        """The mock keeps its own request log when alone."""
        raise NotImplementedError("FalMock keeps the request log of a MemoryStore")

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "MemoryStore()"
