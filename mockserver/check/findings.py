"""A finding: what one protocol judgement concluded, before it is placed in a report."""

from __future__ import annotations

from dataclasses import dataclass

from mockserver.check.exchange import Exchange
from mockserver.check.results import Verdict, warn_renamed


@dataclass(frozen=True)
class Finding:
    """One named check's verdict, its reason, and the exchanges that show it."""

    check: str
    verdict: Verdict
    reason: str
    exchanges: tuple[Exchange, ...] = ()

    @classmethod
    def of(cls, check: str, verdict: Verdict, reason: str, *exchanges: Exchange) -> Finding:
        """`Finding(check, verdict, reason, exchanges)` with the exchanges as arguments."""
        return cls(check, verdict, reason, exchanges)

    @property
    def outcome(self) -> Verdict:
        """Deprecated spelling of `verdict`."""
        warn_renamed("Finding.outcome", "Finding.verdict")
        return self.verdict

    @property
    def failed(self) -> bool:
        """The server violates the protocol here."""
        return self.verdict is Verdict.FAIL
