"""Who may reach the control API: loopback only, a token, or (said aloud) anyone.

The control API (`/_mock/*`) resets state, moves the clock and scripts
failures, and it needs no fal key. On a loopback address only this machine
reaches it; a server bound anywhere else must either require a control token
(`Authorization: Bearer <token>` on every `/_mock/*` request) or be told
explicitly that an open control API is intended.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field

#: The environment variable `serve` reads the control token from.
CONTROL_TOKEN_ENV = "MOCKSERVER_CONTROL_TOKEN"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


class ExposureRefused(ValueError):
    """A non-loopback bind with an open control API that nobody asked for."""


def is_loopback(host: str) -> bool:
    """True when `host` (an address or name to bind) is reachable from this machine only.

    Names other than localhost count as not loopback: what they resolve to
    can change, and an all-interfaces bind (``0.0.0.0``, ``::``) is not.
    """
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ControlAccess:
    """How `/_mock/*` requests are let in: by token (None: no token needed)."""

    token: str | None = field(default=None, repr=False)
    remote: bool = False  # reachable from other machines

    def allows(self, authorization: str | None) -> bool:
        """Does a request with this Authorization header get in?"""
        if self.token is None:
            return True
        scheme, _, given = (authorization or "").strip().partition(" ")
        # Constant-time: the answer must not tell how much of a guess was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        )

    def describe(self) -> str:
        """One line for the start-up banner."""
        if self.token is not None:
            return "control API needs 'Authorization: Bearer <control token>'"
        if self.remote:
            return (
                "control API OPEN to the network (--allow-remote-control): anyone who reaches"
                " this port can reset it, move its clock and script failures"
            )
        return "control API open to this machine only (loopback)"


def proxy_adds_key(host: str, asked: bool) -> bool:
    """Does the proxy route (`/api/fal/proxy`) put a key on requests that carry none?

    It stands for a browser app's own server, which holds the key; on a
    loopback bind only this machine reaches it. Bound anywhere else it would
    hand the key's rights to anyone who reaches the port, so it does that only
    when asked (`serve --proxy-adds-key`); keyless requests are then refused
    like any other (401).
    """
    return asked or is_loopback(host)


def decide(host: str, token: str | None, allow_remote: bool) -> ControlAccess:
    """The control access for a server bound to `host`; `ExposureRefused` when a
    non-loopback bind has neither a token nor an explicit permission."""
    token = (token or "").strip() or None  # a blank token is no token
    remote = not is_loopback(host)
    if remote and token is None and not allow_remote:
        raise ExposureRefused(
            f"--host {host} makes the control API (/_mock/*: reset, clock, faults; no key"
            " needed) reachable from the network. Require a token with --control-token"
            f" TOKEN (or ${CONTROL_TOKEN_ENV}), or pass --allow-remote-control if an open"
            " control API is really what you want."
        )
    return ControlAccess(token=token, remote=remote)
