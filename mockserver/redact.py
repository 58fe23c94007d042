"""The one redaction policy: what counts as a secret, and how it is masked.

Everything that shows or keeps what clients sent goes through it: the mock's
request log and control API (`/_mock/requests`, `/_mock/jobs`,
`/_mock/webhooks`), the servers' access logs, `mockserver check` reports, and
the recorder's contracts. A secret is

- the value of a header, query parameter or JSON field whose *name* looks
  secret (``X-Fal-Key``, ``api_key``, ``accessToken``, ``X-Amz-Signature``...),
  at any depth, inside URLs nested in query values too (``?fal_webhook=...%3Ftoken%3D``);
- the credential of an ``Authorization`` header (its scheme is kept: evidence);
- every value a `Redactor` has learnt (keys seen in requests), and each part
  of a ``key_id:key_secret`` key, wherever it appears in text.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
#: Shorter values are not learnt: masking them would mask ordinary words.
MIN_SECRET_LENGTH = 4
_SECRET_NAME = re.compile(
    r"(^|[_-])(key|api[_-]?key|token|secret|password|passwd|signature|sig|auth|authorization"
    r"|cookie|session|credential)s?($|[_-])|^x-amz-(signature|credential|security-token)$",
    re.I,
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})


class LeakError(Exception):
    """Text about to be kept still holds a secret: nothing was written."""


@lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    # camelCase names (apiKey, accessToken) are read as snake_case.
    return bool(_SECRET_NAME.search(_CAMEL.sub("_", name)))


def credential(authorization: str) -> str:
    """The credential of an Authorization header value (`Key k` -> `k`; `k` -> `k`)."""
    return authorization.strip().split(" ", 1)[-1].strip()


def credential_parts(secret: str) -> tuple[str, ...]:
    """`secret` and, for a ``key_id:key_secret`` key, each part (short ones left out)."""
    parts = [secret, *secret.split(":")] if ":" in secret else [secret]
    return tuple(dict.fromkeys(p for p in parts if len(p) >= MIN_SECRET_LENGTH))


class Redactor:
    """Masks secrets in headers, query parameters, URLs, JSON data and text.

    It learns literal secrets as requests pass (`learn`...); `fields` are extra
    names to treat as secret; `patterns` regular expressions whose matches are
    masked anywhere in a string. `limit` bounds how many learnt values are
    kept (the oldest are forgotten first); None keeps them all.
    """

    def __init__(
        self,
        fields: Iterable[str] = (),
        patterns: Iterable[re.Pattern[str]] = (),
        *,
        limit: int | None = None,
    ) -> None:
        self.fields = frozenset(f.lower() for f in fields)
        self.patterns = tuple(patterns)
        self.limit = limit
        self._lock = threading.Lock()
        self._learnt: dict[str, None] = {}  # insertion-ordered: the oldest goes first
        self._matcher: re.Pattern[str] | None = None

    def __repr__(self) -> str:
        return f"Redactor(secrets={len(self._learnt)}, fields={sorted(self.fields)})"

    @property
    def secrets(self) -> frozenset[str]:
        """The literal values being masked."""
        return frozenset(self._learnt)

    @classmethod
    def build(cls, fields: Iterable[str] = (), patterns: Iterable[str] = ()) -> Redactor:
        """From command-line lists; a bad pattern raises ValueError naming it."""
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise ValueError(f"--scrub-pattern {pattern!r}: {exc}") from None
        return cls(fields, compiled)

    @classmethod
    def knowing(cls, *secrets: str | None) -> Redactor:
        """A redactor that masks these keys (and their parts) besides the named fields."""
        redactor = cls()
        for secret in secrets:
            if secret:
                redactor.learn(secret)
        return redactor

    # -- learning -----------------------------------------------------------------

    def learn(self, secret: str) -> None:
        """Mask `secret` (and each part of a ``key_id:key_secret``) from now on."""
        if secret in self._learnt:  # the hot path: a key seen before
            return
        with self._lock:
            for part in credential_parts(secret.strip()):
                self._learnt[part] = None
            if self.limit is not None:
                while len(self._learnt) > self.limit:
                    del self._learnt[next(iter(self._learnt))]
            self._matcher = None

    def learn_authorization(self, authorization: str | None) -> None:
        """Learn the credential of an Authorization header (`Key k` / `Bearer k`)."""
        if authorization and authorization.strip():
            self.learn(credential(authorization))

    def learn_data(self, value: Any) -> None:
        """Learn the values of secret-named fields anywhere in JSON data."""
        if isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, str) and self.is_secret_name(str(name)):
                    self.learn(item)
                else:
                    self.learn_data(item)
        elif isinstance(value, list):
            for item in value:
                self.learn_data(item)

    # -- masking ------------------------------------------------------------------

    def is_secret_name(self, name: str) -> bool:
        """True for a header/field/parameter name whose value must never be shown."""
        return name.lower() in self.fields or _secret_name(name)

    def headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Headers (lower-case names) with secret values masked; an auth scheme is kept."""
        clean: dict[str, str] = {}
        for name, value in headers:
            lower = name.lower()
            if lower in _AUTH_HEADERS:
                scheme = value.split(" ", 1)[0] if " " in value.strip() else ""
                clean[lower] = f"{scheme} {MASK}".strip()
            elif self.is_secret_name(lower):
                clean[lower] = MASK
            else:
                clean[lower] = self.text(self.url(value) if "://" in value else value)
        return clean

    def query(self, params: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
        """Query parameters with secret values masked (URLs in values too)."""
        pairs = params.items() if isinstance(params, Mapping) else params
        return {k: self._value(k, v) for k, v in pairs}

    def url(self, value: str) -> str:
        """A URL (or a path with a query) with secret query values masked."""
        try:
            parts = urlsplit(value)
        except ValueError:  # "http://[": not a URL after all; its query cannot be read
            return self.text(value.split("?", 1)[0] + ("?" + MASK if "?" in value else ""))
        if not parts.query:
            return self.text(value)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, self._value(k, v)) for k, v in pairs]
        if query == pairs:  # nothing masked: the URL stays exactly as written
            return self.text(value)
        return self.text(urlunsplit(parts._replace(query=urlencode(query, safe="*"))))

    def data(self, value: Any) -> Any:
        """JSON data with secret fields masked and secrets removed from strings."""
        if isinstance(value, dict):
            return {
                k: (MASK if self.is_secret_name(str(k)) else self.data(v)) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.data(item) for item in value]
        if isinstance(value, str):
            return self.url(value) if "://" in value else self.text(value)
        return value

    def text(self, value: str) -> str:
        """`value` with every known secret and every pattern match masked."""
        if self._learnt:
            value = self._secrets_matcher().sub(MASK, value)
        for pattern in self.patterns:
            value = pattern.sub(MASK, value)
        return value

    def ensure_clean(self, text: str, where: str) -> None:
        """Raise `LeakError` if a known secret (or pattern) is still in `text`."""
        for secret in self.secrets:
            if secret in text:
                raise LeakError(f"{where}: a key is still in the fixture; nothing was written")
        for pattern in self.patterns:
            if pattern.search(text):
                what = f"--scrub-pattern {pattern.pattern!r}"
                raise LeakError(f"{where}: {what} still matches; nothing was written")

    def strings(self, value: Any) -> Any:
        """JSON data with learnt secrets masked in every string (names left alone)."""
        if isinstance(value, dict):
            return {k: self.strings(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.strings(item) for item in value]
        if isinstance(value, str) and self._learnt:
            return self.text(value)
        return value

    def _secrets_matcher(self) -> re.Pattern[str]:
        matcher = self._matcher
        if matcher is None:
            with self._lock:
                # Longest first: a whole `id:secret` key is one mask, not `***:***`.
                ordered = sorted(self._learnt, key=len, reverse=True)
                matcher = self._matcher = re.compile("|".join(map(re.escape, ordered)))
        return matcher

    def _value(self, name: str, value: str) -> str:
        if self.is_secret_name(name):
            return MASK
        return self.url(value) if "://" in value else self.text(value)


#: The policy with nothing learnt: names and Authorization headers only.
POLICY = Redactor()


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers with secret values masked (the auth scheme is kept: it is evidence)."""
    return POLICY.headers(headers)


def redact_query(params: Mapping[str, str]) -> dict[str, str]:
    """Query parameters with secret-looking values masked."""
    return POLICY.query(params)


def redact_url(url: str | None) -> str | None:
    """A URL with secret-looking query values masked."""
    return POLICY.url(url) if url is not None else None


class AccessLogFilter(logging.Filter):
    """Masks secret query values in uvicorn's access log lines (`?fal_webhook=...token=`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the request path argument; never drops a line."""
        args = record.args
        # uvicorn.access: (client, method, full_path, http_version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], POLICY.url(args[2]), *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging set-up with `AccessLogFilter` on the access log."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": AccessLogFilter}
    config["handlers"]["access"]["filters"] = ["redact"]
    return config


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
