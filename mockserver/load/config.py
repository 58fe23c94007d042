"""What a load run does, in a form the master sends to its workers (no key inside)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from mockserver.client.protocol import AuthScheme

_SPAN = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


def parse_duration(text: str) -> float:
    """Seconds from `90`, `2.5`, or Locust's `30s`, `5m`, `1h30m` form; ValueError otherwise."""
    text = text.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        match = _SPAN.match(text)
        if not text or match is None:
            raise ValueError(
                f"duration {text!r}: give seconds (90) or Locust's form (30s, 5m, 1h30m)"
            ) from None
        seconds = sum(
            int(match.group(unit) or 0) * factor
            for unit, factor in (("h", 3600), ("m", 60), ("s", 1))
        )
    if not seconds > 0:
        raise ValueError(f"duration {text!r} must be more than zero")
    return seconds


def split_budget(total: int | None, shares: int) -> list[int | None]:
    """`total` billable submits split over `shares` workers, never more than `total` in all."""
    if total is None:
        return [None] * shares
    base, extra = divmod(total, shares)
    return [base + (1 if index < extra else 0) for index in range(shares)]


@dataclass(frozen=True)
class LoadConfig:
    """The simulated users' settings. JSON-ready: a master sends it to its workers,
    which read the key from their own environment (it never crosses the wire)."""

    base_url: str
    endpoints: tuple[str, ...]  # the model mix, each picked with equal chance
    auth_scheme: AuthScheme = "Key"
    think_min: float = 0.5
    think_max: float = 2.0
    stream_share: float = 0.5  # share of jobs that wait on the status stream, not polls
    poll_interval: float = 0.5
    job_timeout: float = 60.0
    request_timeout: float = 30.0
    budget: int | None = None  # billable submits this process may send (None: no cap)
    cancel_share: float = 0.0  # share of jobs cancelled right after their submit
    # Two-sided runs: the upstream mock's control API, and the run's marker prefix.
    upstream_control: str | None = None
    marker_prefix: str | None = None

    @property
    def two_sided(self) -> bool:
        """Do the users mark their inputs and record each job for the reconciliation?"""
        return self.marker_prefix is not None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadConfig:
        """The config a master sent."""
        return cls(**{**data, "endpoints": tuple(data["endpoints"])})
