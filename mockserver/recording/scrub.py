"""Scrubbing secrets out of everything a recording writes, and refusing leaks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Field and query-parameter names whose values are secrets, wherever they appear.
_SECRET_NAME = re.compile(
    r"(^|[_-])(key|api[_-]?key|token|secret|password|passwd|signature|sig|auth|authorization"
    r"|cookie|session|credential)s?($|[_-])|^x-amz-(signature|credential|security-token)$",
    re.I,
)


class LeakError(Exception):
    """A fixture about to be written still holds a secret: nothing was written."""


@dataclass
class Scrubber:
    """Masks secrets in JSON data, URLs and text.

    `secrets` are literal values (the keys seen in Authorization headers are
    added as they pass); `fields` extra field names to mask; `patterns` extra
    regular expressions whose matches are masked anywhere in a string.
    """

    secrets: set[str] = field(default_factory=set)
    fields: frozenset[str] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = ()

    def __repr__(self) -> str:
        return f"Scrubber(secrets={len(self.secrets)}, fields={sorted(self.fields)})"

    @classmethod
    def build(cls, fields: Iterable[str] = (), patterns: Iterable[str] = ()) -> Scrubber:
        """From command-line lists; a bad pattern raises ValueError naming it."""
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise ValueError(f"--scrub-pattern {pattern!r}: {exc}") from None
        return cls(set(), frozenset(f.lower() for f in fields), tuple(compiled))

    def learn(self, authorization: str | None) -> None:
        """Remember the key of an Authorization header (`Key k` / `Bearer k`)."""
        if authorization:
            token = authorization.split(" ", 1)[-1].strip()
            if len(token) >= 4:  # a shorter "key" would mask ordinary words
                self.secrets.add(token)

    def is_secret_name(self, name: str) -> bool:
        """True for a field/parameter name whose value must never be kept."""
        return name.lower() in self.fields or bool(_SECRET_NAME.search(name))

    def data(self, value: Any) -> Any:
        """`value` (JSON data) with secret fields masked and secrets removed from strings."""
        if isinstance(value, dict):
            return {
                k: (MASK if self.is_secret_name(str(k)) else self.data(v)) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.data(item) for item in value]
        if isinstance(value, str):
            return self.text(self.url(value) if "://" in value else value)
        return value

    def url(self, value: str) -> str:
        """A URL with secret-looking query parameters (signed-URL tokens) masked."""
        parts = urlsplit(value)
        if not parts.query:
            return value
        query = [
            (k, MASK if self.is_secret_name(k) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urlunsplit(parts._replace(query=urlencode(query, safe="*")))

    def text(self, value: str) -> str:
        """`value` with every known secret and every pattern match masked."""
        for secret in self.secrets:
            value = value.replace(secret, MASK)
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
