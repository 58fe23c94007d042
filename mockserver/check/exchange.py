"""One captured HTTP exchange, the material every protocol judgement works on.

Plain data: no event loop and no HTTP library is needed to build one or to
judge it, so a load test (Locust) or a hand-written script can capture its own
exchanges and reuse `mockserver.check.judge`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mockserver.check.results import Evidence, excerpt

# Why an exchange has no (whole) answer.
Failure = Literal["connect", "timeout", "transport", "too-large"]
_NO_JSON = object()
# Shown as a size, never as text, in evidence.
_MEDIA_TYPES = ("image/", "video/", "audio/", "application/octet-stream")


@dataclass
class Exchange:
    """One request and what came back (or why nothing did).

    `headers` is any mapping of the answer's headers (looked up without regard
    to case); `error` says why there is no answer, `failure` what kind of
    failure that is.
    """

    method: str
    url: str
    status_code: int | None = None
    headers: Mapping[str, str] | None = None
    body: bytes = b""
    error: str | None = None
    failure: Failure | None = None

    def json(self) -> Any:
        """The body as JSON, or a marker that `is_json` tells apart."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return _NO_JSON

    def json_object(self) -> dict[str, Any] | None:
        """The body when it is a JSON object, else None."""
        data = self.json()
        return data if isinstance(data, dict) else None

    def header(self, name: str) -> str | None:
        """A response header (any case), if there was a response."""
        if self.headers is None:
            return None
        value = self.headers.get(name)
        if value is not None:
            return value
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    @property
    def accepted(self) -> bool:
        """The server answered with a 2xx status."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def evidence(self, secrets: tuple[str, ...]) -> Evidence:
        """This exchange as report evidence, secrets masked."""
        content_type = self.header("content-type") or ""
        binary = f"<{len(self.body)} bytes of {content_type or 'binary data'}>"
        if content_type.startswith(_MEDIA_TYPES):
            text = binary
        else:
            try:
                text = self.body.decode("utf-8")
            except UnicodeDecodeError:
                text = binary
        return Evidence(
            method=self.method,
            url=excerpt(self.url, secrets),
            status_code=self.status_code,
            excerpt=excerpt(text, secrets),
            error=excerpt(self.error, secrets) if self.error else None,
        )

    def describe(self) -> str:
        """A short human account of the answer, for a check's reason."""
        if self.error:
            return self.error
        kind = (self.header("content-type") or "no content type").split(";")[0]
        if self.json() is _NO_JSON and self.body:
            return f"HTTP {self.status_code} with a non-JSON body ({kind})"
        return f"HTTP {self.status_code}"


def is_json(value: Any) -> bool:
    """False for the marker `Exchange.json` returns for a non-JSON body."""
    return value is not _NO_JSON


def json_evidence(method: str, url: str, data: Any) -> Exchange:
    """Evidence for a judgement made on data already read (a result, a webhook body)."""
    return Exchange(method, url, 200, None, json.dumps(data, separators=(",", ":")).encode())
