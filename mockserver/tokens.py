"""Short-lived tokens for realtime (and client-mode streaming), as ``POST /tokens/`` issues them.

A token is scoped to the app aliases it was asked for and expires on the
mock's clock. Tokens are random strings the mock remembers (bounded; a reset
forgets them): clients treat fal's JWTs as opaque, so nothing here is a JWT.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from mockserver.clock import Clock

DEFAULT_EXPIRATION = 120
MAX_EXPIRATION = 86400
_MAX_TOKENS = 10_000


class TokenRefused(Exception):
    """A token that does not admit this connection (the HTTP layer answers it)."""


class UnknownToken(TokenRefused):
    """Not a token this mock issued (or it was forgotten by a reset)."""


class ExpiredToken(TokenRefused):
    """The token's lifetime has passed on the mock's clock."""


class WrongApp(TokenRefused):
    """The token was issued for other apps."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token allows: whose it is, for which app aliases, until when."""

    tenant: str
    apps: frozenset[str]
    expires_at: float


class TokenIssuer:
    """Issues and checks realtime tokens against one clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._grants: OrderedDict[str, Grant] = OrderedDict()

    def issue(self, tenant: str, apps: list[str], expiration: float) -> str:
        """A new token for `tenant`, good for `apps` (aliases) for `expiration` seconds."""
        token = secrets.token_urlsafe(24)
        grant = Grant(tenant, frozenset(apps), self._clock.now() + expiration)
        with self._lock:
            self._grants[token] = grant
            while len(self._grants) > _MAX_TOKENS:
                self._grants.popitem(last=False)
        return token

    def check(self, token: str, alias: str) -> str:
        """The tenant of a token that admits `alias` now; `TokenRefused` otherwise."""
        with self._lock:
            grant = self._grants.get(token)
        if grant is None:
            raise UnknownToken("unknown token")
        if grant.expires_at <= self._clock.now():
            raise ExpiredToken("the token has expired")
        if alias not in grant.apps:
            raise WrongApp(f"the token is not for app {alias!r}")
        return grant.tenant

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._grants.clear()
