"""Keeping secrets out of everything the mock records or prints."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

_SECRET_NAME = re.compile(r"(key|token|secret|password|signature|auth|cookie|session)", re.I)
MASK = "***"


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers with secret values masked (the auth scheme is kept: it is evidence)."""
    clean: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        kind = _header_kind(lower)
        if kind == "auth":
            scheme = value.split(" ", 1)[0] if " " in value.strip() else ""
            clean[lower] = f"{scheme} {MASK}".strip()
        elif kind == "secret":
            clean[lower] = MASK
        else:
            clean[lower] = value
    return clean


@lru_cache(maxsize=1024)
def _header_kind(lower_name: str) -> str:
    if lower_name in ("authorization", "proxy-authorization"):
        return "auth"
    return "secret" if _SECRET_NAME.search(lower_name) else "plain"


def redact_query(params: Mapping[str, str]) -> dict[str, str]:
    """Query parameters with secret-looking values masked."""
    return {k: (MASK if _SECRET_NAME.search(k) else v) for k, v in params.items()}


@lru_cache(maxsize=4096)
def fingerprint(secret: str) -> str:
    """A stable, non-reversible name for a key: what jobs are owned by."""
    return "key-" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def key_fingerprints(authorization: str | None) -> tuple[str, ...]:
    """Fingerprints of the key in an Authorization header (any scheme).

    The whole key comes first, then each half of a ``key_id:key_secret`` key,
    so that a leak of either half can be recognised without anyone printing it.
    """
    if not authorization:
        return ()
    key = authorization.strip().partition(" ")[2].strip()
    if not key:
        return ()
    halves = tuple(fingerprint(part) for part in key.split(":", 1) if part) if ":" in key else ()
    return (fingerprint(key), *halves)
