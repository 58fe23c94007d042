"""What a conformance check found: verdicts, evidence, and the whole report."""

from __future__ import annotations

import enum
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mockserver.redact import Redactor

_EXCERPT = 600


def warn_renamed(old: str, new: str) -> None:
    """Warn that `old` is now `new`: a check's pass/fail/note/skip is a verdict,
    while `mockserver.Outcome` is the mock's scripted end of a run."""
    warnings.warn(f"{old} is now {new}", DeprecationWarning, stacklevel=3)


class Verdict(enum.StrEnum):
    """How one check ended."""

    PASS = "pass"  # the server behaves as fal's protocol says
    FAIL = "fail"  # it violates the protocol
    NOTE = "note"  # a documented quirk (works, but differs from fal)
    SKIP = "skip"  # not run: an earlier step failed, or it needs something not given


@dataclass(frozen=True)
class Evidence:
    """One exchange, as shown in reports: never the key, only the auth scheme."""

    method: str
    url: str
    status_code: int | None
    excerpt: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "method": self.method,
            "url": self.url,
            "status_code": self.status_code,
            "excerpt": self.excerpt,
            "error": self.error,
        }

    def line(self) -> str:
        """One line for humans: `GET url -> 202 {...}`."""
        answer = self.error if self.error else f"{self.status_code} {self.excerpt}"
        return f"{self.method} {self.url} -> {answer}"


def shorten(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def excerpt(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` shortened for a report, masked by the redaction policy: the keys
    (each part of an id:secret key too) and secret-named query values."""
    policy = Redactor.knowing(*secrets)
    text = policy.url(text) if "://" in text and " " not in text.strip() else policy.text(text)
    text = " ".join(text.split())
    return shorten(text, _EXCERPT)


@dataclass(frozen=True)
class CheckResult:
    """One named check of one scenario on one endpoint."""

    scenario: str
    endpoint: str
    check: str
    verdict: Verdict
    reason: str
    evidence: tuple[Evidence, ...] = ()

    @property
    def outcome(self) -> Verdict:
        """Deprecated spelling of `verdict` (`mockserver.Outcome` is how a run ends)."""
        warn_renamed("CheckResult.outcome", "CheckResult.verdict")
        return self.verdict

    @property
    def name(self) -> str:
        """`scenario[endpoint] check`: unique within a report."""
        return f"{self.scenario}[{self.endpoint}] {self.check}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "scenario": self.scenario,
            "endpoint": self.endpoint,
            "check": self.check,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "evidence": [e.to_json() for e in self.evidence],
        }


@dataclass
class Report:
    """Every check of one run, in the order they ended."""

    base_url: str
    auth_scheme: str
    results: list[CheckResult] = field(default_factory=list)
    submits: int = 0  # submits the server accepted (what it may charge for)
    seconds: float = 0.0
    interrupted: bool = False  # stopped by the user: the report is partial
    cancelled: int = 0  # requests cancelled because the run was interrupted

    def counts(self) -> Counter[Verdict]:
        """How many checks ended each way."""
        return Counter(result.verdict for result in self.results)

    @property
    def ok(self) -> bool:
        """True when nothing failed (notes and skips are not failures)."""
        return all(result.verdict is not Verdict.FAIL for result in self.results)

    def by_check(self, check: str) -> list[CheckResult]:
        """Every result of the check named `check`."""
        return [result for result in self.results if result.check == check]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        counts = self.counts()
        return {
            "base_url": self.base_url,
            "auth_scheme": self.auth_scheme,
            "ok": self.ok,
            "submits": self.submits,
            "interrupted": self.interrupted,
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
            "counts": {verdict.value: counts.get(verdict, 0) for verdict in Verdict},
            "results": [result.to_json() for result in self.results],
        }


def __getattr__(name: str) -> Any:
    # Branches written before the rename import `Outcome` from here; they keep
    # working, told the new name, until they are updated.
    if name == "Outcome":
        warn_renamed("mockserver.check.results.Outcome", "mockserver.check.results.Verdict")
        return Verdict
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
