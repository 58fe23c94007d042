"""A finding: what one protocol judgement concluded, before it is placed in a report."""

from __future__ import annotations

from dataclasses import dataclass

from mockserver.check.exchange import Exchange
from mockserver.check.results import Outcome


@dataclass(frozen=True)
class Finding:
    """One named check's outcome, its reason, and the exchanges that show it."""

    check: str
    outcome: Outcome
    reason: str
    exchanges: tuple[Exchange, ...] = ()

    @classmethod
    def of(cls, check: str, outcome: Outcome, reason: str, *exchanges: Exchange) -> Finding:
        """`Finding(check, outcome, reason, exchanges)` with the exchanges as arguments."""
        return cls(check, outcome, reason, exchanges)

    @property
    def failed(self) -> bool:
        """The server violates the protocol here."""
        return self.outcome is Outcome.FAIL
