"""The server under check and how hard to try."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from mockserver.client.protocol import AuthScheme
from mockserver.webhooks import FAL_JWKS_URL


@dataclass(frozen=True)
class Target:
    """The server under check. Keys never appear in its repr."""

    base_url: str
    key: str = field(repr=False)
    auth_scheme: AuthScheme = "Key"
    second_key: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What evidence must never show."""
        return tuple(k for k in (self.key, self.second_key) if k)

    @property
    def other_scheme(self) -> AuthScheme:
        """The scheme this target is not using (what a refused key may need)."""
        return "Bearer" if self.auth_scheme == "Key" else "Key"

    def auth(self, kind: str = "ok") -> dict[str, str]:
        """The Authorization header for a kind of call (ok, none, wrong-key, ...)."""
        if kind == "none":
            return {}
        if kind == "wrong-key":
            return {"Authorization": f"{self.auth_scheme} fal-harness-wrong-{uuid.uuid4().hex}"}
        if kind == "wrong-scheme":
            return {"Authorization": f"{self.other_scheme} {self.key}"}
        if kind == "second-key":
            return {"Authorization": f"{self.auth_scheme} {self.second_key}"}
        return {"Authorization": f"{self.auth_scheme} {self.key}"}


@dataclass(frozen=True)
class Settings:
    """How hard and how long to try."""

    concurrency: int = 8
    job_timeout: float = 120.0
    request_timeout: float = 30.0
    poll_interval: float = 0.5
    max_requests: int | None = None
    jwks_url: str = FAL_JWKS_URL
    # How long a status stream may stay open after its COMPLETED event: fal
    # closes it at once, so a short wait decides (not the whole job timeout).
    stream_grace: float = 5.0
