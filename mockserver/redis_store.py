"""`RedisStore`: replicas of the mock sharing one queue through Redis.

Every operation that changes the mock's state (see `mockserver.store`) is
appended to one Redis stream, stamped with Redis's own time. Each replica
applies the stream's entries in order, each at its stamp, and then reads at
Redis's current time: all replicas hold the same jobs in the same states, and
the queue engine's lazy-time replay (FIFO per app, runners, priorities,
deadlines, expiry) decides exactly what one process would.

Appending and reading are one Lua script each, so no replica can read a time
later than an operation it has not seen yet: an operation's stamp is never
earlier than any time a replica has already answered at.

Redis's persistence (RDB or AOF) makes the stream survive restarts: a replica
that starts replays it and answers polls of old ids as before.

What is not an operation stays out of the stream: recorded requests go to a
capped list (one push per request, no replica replays another's polls), and
webhook attempts are claimed with ``SET NX`` so each is sent by one replica.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from mockserver.clock import Clock, ManualClock
from mockserver.faults import Fault
from mockserver.outcomes import LogLine, Outcome
from mockserver.store import Apply, StoreError

if TYPE_CHECKING:
    import redis

    from mockserver.mock import RecordedRequest

_SCHEMES = ("redis", "rediss", "unix")
# How long a webhook attempt's claim is kept: longer than any retry schedule.
_CLAIM_SECONDS = 8 * 86400

# Both scripts read Redis's clock and never let it go backwards across
# operations, so every replica sees one timeline.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < last then now = last end
local stamp = string.format('%.6f', now)
"""
_COMMIT = (
    _NOW
    + """
redis.call('SET', KEYS[2], stamp)
if ARGV[2] == 'reset' then redis.call('DEL', KEYS[3]) end
local id = redis.call('XADD', KEYS[1], '*', 't', stamp, 'k', ARGV[2], 'a', ARGV[3])
return {id, stamp, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')}
"""
)
_REFRESH = (
    _NOW
    + """
return {'', stamp, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')}
"""
)


class PinnedClock:
    """Real time as the shared log tells it: the stamp of the operation being
    applied, then Redis's time when a replica caught up. It never goes back."""

    manual = False

    def __init__(self) -> None:
        self._now = time.time()

    def now(self) -> float:
        """The time this replica last caught up to."""
        return self._now

    def pin(self, timestamp: float) -> None:
        """Move to `timestamp` (never backwards)."""
        if timestamp > self._now:
            self._now = timestamp

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Like a real clock, it tells nobody: readers sync lazily."""

    def __repr__(self) -> str:
        return f"PinnedClock(now={self._now:.6f})"


def redact_store_url(url: str) -> str:
    """`url` without its password (and user name), for messages and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    auth = "***@" if parts.username or parts.password else ""
    return urlunsplit((parts.scheme, f"{auth}{host}{port}", parts.path, "", ""))


class RedisStore:
    """Operations in a Redis stream, applied by every replica in the stream's order."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        manual_clock: bool = False,
        prefix: str = "fqh",
        request_log_size: int = 1000,
    ) -> None:
        shown = redact_store_url(url)
        if urlsplit(url).scheme not in _SCHEMES:
            raise StoreError(
                f"--store takes redis://HOST:PORT/DB (or rediss://, unix://), not {shown!r}"
            )
        try:
            import redis
        except ImportError:
            raise StoreError(
                "a Redis store needs the redis client: pip install 'fal-queue-harness[redis]'"
            ) from None
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._shown = shown
        try:
            self._redis: redis.Redis = redis.Redis.from_url(
                url, socket_connect_timeout=3, socket_timeout=10
            )
            self._redis.ping()
        except (ValueError, *self._errors) as error:
            raise StoreError(f"cannot use Redis at {shown}: {_reason(error)}") from None
        self._log = f"{prefix}:log"
        self._last = f"{prefix}:time"
        self._requests = f"{prefix}:requests"
        self._claims = f"{prefix}:claim:"
        self._request_log_size = request_log_size
        self.clock: Clock = ManualClock() if manual_clock else PinnedClock()
        mode = "manual" if manual_clock else "real"
        self._call(self._redis.set, f"{prefix}:clock", mode, nx=True)
        shared_mode = self._call(self._redis.get, f"{prefix}:clock").decode()
        if shared_mode != mode:
            raise StoreError(
                f"the replicas on {shown} run a {shared_mode} clock: start this one with"
                f" --clock {shared_mode} too (or use another Redis database)"
            )
        self._call(self._redis.set, f"{prefix}:secret", secrets.token_bytes(16), nx=True)
        self.secret: bytes = self._call(self._redis.get, f"{prefix}:secret")
        self._commit_script = self._redis.register_script(_COMMIT)
        self._refresh_script = self._redis.register_script(_REFRESH)
        self._cursor = "0-0"
        self._apply: Apply | None = None
        # One replay at a time: the event loop and the webhook thread both catch up.
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"RedisStore({self._shown!r}, cursor={self._cursor!r})"

    def bind(self, apply: Apply) -> None:
        """Apply operations with `apply`; the first refresh replays the whole log."""
        self._apply = apply

    def commit(self, kind: str, args: tuple[Any, ...]) -> Any:
        """Append the operation, apply everything up to it; its result here."""
        encoded = json.dumps(_encode(kind, args), separators=(",", ":"))
        with self._lock:
            own, stamp, entries = self._call(
                self._commit_script,
                keys=[self._log, self._last, self._requests],
                args=[self._cursor, kind, encoded],
            )
            result = self._replay(entries, stamp, own.decode())
        if isinstance(result, _Raised):
            raise result.error
        return result

    def refresh(self) -> None:
        """Apply what the other replicas appended since the last look."""
        with self._lock:
            _, stamp, entries = self._call(
                self._refresh_script, keys=[self._log, self._last], args=[self._cursor]
            )
            self._replay(entries, stamp, None)

    def claim(self, name: str) -> bool:
        """True for the first replica to claim `name`."""
        won = self._call(self._redis.set, self._claims + name, 1, nx=True, ex=_CLAIM_SECONDS)
        return bool(won)

    def record(self, entry: RecordedRequest) -> None:
        """Keep a received request in the shared, capped list."""
        # One command per request (this is on every poll); the list is cut
        # back to its size now and then, and read back no longer than that.
        data = json.dumps([getattr(entry, name) for name in _RECORD_FIELDS], separators=(",", ":"))
        length = self._call(self._redis.lpush, self._requests, data)
        if length > self._request_log_size + _TRIM_SLACK:
            self._call(self._redis.ltrim, self._requests, 0, self._request_log_size - 1)

    def recorded(self) -> list[RecordedRequest]:
        """Every replica's recorded requests, oldest first."""
        from mockserver.mock import RecordedRequest

        raw = self._call(self._redis.lrange, self._requests, 0, self._request_log_size - 1)
        entries = []
        for item in reversed(raw):
            fields = dict(zip(_RECORD_FIELDS, json.loads(item), strict=True))
            fields["key_fingerprints"] = tuple(fields["key_fingerprints"])
            entries.append(RecordedRequest(**fields))
        return entries

    def close(self) -> None:
        """Close the connections."""
        self._redis.close()

    def _replay(self, entries: list[Any], stamp: bytes, own: str | None) -> Any:
        assert self._apply is not None, "bind the store to a mock first"
        result: Any = None
        pinned = isinstance(self.clock, PinnedClock)
        for entry_id, fields in entries:
            entry = entry_id.decode()
            values = {fields[i].decode(): fields[i + 1] for i in range(0, len(fields), 2)}
            kind = values["k"].decode()
            if pinned:
                assert isinstance(self.clock, PinnedClock)
                self.clock.pin(float(values["t"]))
            try:
                applied = self._apply(kind, _decode(kind, json.loads(values["a"])))
            except Exception as error:  # the committing replica re-raises it
                applied = _Raised(error)
            self._cursor = entry
            if entry == own:
                result = applied
        if pinned:
            assert isinstance(self.clock, PinnedClock)
            self.clock.pin(float(stamp))
        return result

    def _call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except self._errors as error:
            raise StoreError(f"Redis at {self._shown}: {_reason(error)}") from None


@dataclasses.dataclass(frozen=True, slots=True)
class _Raised:
    error: Exception


def _reason(error: Exception) -> str:
    # redis-py's messages name host and port, never the password.
    return str(error) or type(error).__name__


_RECORD_FIELDS = (
    "time",
    "method",
    "path",
    "query",
    "headers",
    "action",
    "endpoint_id",
    "request_id",
    "body",
    "status_code",
    "key_fingerprints",
)
_TRIM_SLACK = 100


# -- operations as JSON ---------------------------------------------------------------
# Most arguments are JSON already; these positions hold objects.
_OUTCOME_AT = {"outcome_always": 1, "outcome_next": 1}


def _encode(kind: str, args: tuple[Any, ...]) -> list[Any]:
    values = list(args)
    if kind in _OUTCOME_AT:
        values[1] = dataclasses.asdict(values[1])
    elif kind == "fault_add":
        values[0] = dataclasses.asdict(values[0])
    elif kind == "upload":
        values[0] = base64.b64encode(values[0]).decode()
    return values


def _decode(kind: str, values: list[Any]) -> tuple[Any, ...]:
    if kind in _OUTCOME_AT:
        fields = values[1]
        if fields["logs"] is not None:
            fields["logs"] = tuple(LogLine(**line) for line in fields["logs"])
        values[1] = Outcome(**fields)
    elif kind == "fault_add":
        values[0] = Fault(**values[0])
    elif kind == "upload":
        values[0] = base64.b64decode(values[0])
    return tuple(values)
