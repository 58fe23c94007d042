"""The job ledger: every job's fate counted exactly, failures per check with examples.

One ledger per load process (gevent users share it: nothing yields inside its
methods, so plain counters are safe). A worker sends `snapshot()` to its master
with each stats report; the master `merge`s the latest snapshot of every worker.
In a two-sided run the ledger also keeps each job's `CustomerJob` record (its
marker, what it sent and saw), handed over once the job has ended
(`take_jobs`): a worker sends only the new ones with each report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mockserver.check.results import CheckResult, Verdict
from mockserver.check.upstream import CustomerJob

# How many examples of evidence each failing check and each kind of loss keeps.
EXAMPLES = 3

# Why a job was lost: each lost job is counted under exactly one of these.
LOST_KINDS: dict[str, str] = {
    "never-completed": "accepted but not COMPLETED within the job timeout",
    "result-missing": "COMPLETED, but the result was missing or 404 before its retention",
    "result-crossed": "the result belongs to another request",
    "media-failed": "a media file of the result did not download",
}


@dataclass
class Tally:
    """How often something happened, with the first few examples."""

    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, example: dict[str, Any]) -> None:
        """Count one more, keeping its example while there is room."""
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"count": self.count, "examples": list(self.examples)}


@dataclass
class Ledger:
    """Counts of one process's jobs. `budget`: billable submits it may still send."""

    budget: int | None = None
    submitted: int = 0  # billable submits sent (or about to be)
    accepted: int = 0  # answered 200 with a request id
    completed: int = 0  # reached COMPLETED
    rejected: int = 0  # the submit was not accepted (a failed check says why)
    delivered: int = 0  # result and every media file fetched, nothing lost
    unfinished: int = 0  # cut by the end of the run before its timeout: not lost
    cancelled: int = 0  # cancelled by its customer (``--cancel-share``) after the submit
    lost_total: int = 0
    failures: dict[str, Tally] = field(default_factory=dict)
    notes: dict[str, Tally] = field(default_factory=dict)
    lost: dict[str, Tally] = field(default_factory=dict)
    # Two-sided runs: records of ended jobs not yet taken (`take_jobs`), and why no
    # job may start any more (the upstream is not the mock).
    jobs: list[CustomerJob] = field(default_factory=list)
    halted: str | None = None

    @property
    def in_flight(self) -> int:
        """Submitted jobs whose fate is not known yet."""
        ended = self.rejected + self.delivered + self.unfinished + self.lost_total
        return self.submitted - ended - self.cancelled

    @property
    def exhausted(self) -> bool:
        """No billable submit may be sent any more."""
        return self.budget is not None and self.budget <= 0

    def take_submit(self) -> bool:
        """Spend one billable submit; False (and nothing spent) when the budget is gone."""
        if self.exhausted:
            return False
        if self.budget is not None:
            self.budget -= 1
        self.submitted += 1
        return True

    def judged(self, result: CheckResult) -> None:
        """Count a check's verdict: failures and notes by check name."""
        if result.verdict is Verdict.FAIL:
            self.failures.setdefault(result.check, Tally()).add(example_of(result))
        elif result.verdict is Verdict.NOTE:
            self.notes.setdefault(result.check, Tally()).add(example_of(result))

    def lose(self, kind: str, result: CheckResult) -> None:
        """An accepted job is lost, for the reason `kind` (one of LOST_KINDS); `result`
        is the failed check that shows it."""
        if kind not in LOST_KINDS:
            raise ValueError(f"unknown kind of lost job: {kind}")
        self.lost.setdefault(kind, Tally()).add(example_of(result))

    def ended(self, fate: str) -> None:
        """A submitted job's end: rejected, delivered, lost (see `lose`), cancelled or
        unfinished.
        Each job ends exactly once, so the counts add up to `submitted`."""
        if fate == "rejected":
            self.rejected += 1
        elif fate == "delivered":
            self.delivered += 1
        elif fate == "unfinished":
            self.unfinished += 1
        elif fate == "lost":
            self.lost_total += 1
        elif fate == "cancelled":
            self.cancelled += 1
        else:
            raise ValueError(f"unknown fate of a job: {fate}")

    def record(self, job: CustomerJob) -> None:
        """Keep an ended job's two-sided record until it is taken."""
        self.jobs.append(job)

    def take_jobs(self) -> list[CustomerJob]:
        """The records kept since the last call (each is handed over once)."""
        taken, self.jobs = self.jobs, []
        return taken

    def snapshot(self) -> dict[str, Any]:
        """Everything so far, JSON-ready (cumulative: the latest one replaces older ones)."""
        return {
            "submitted": self.submitted,
            "accepted": self.accepted,
            "completed": self.completed,
            "rejected": self.rejected,
            "delivered": self.delivered,
            "unfinished": self.unfinished,
            "cancelled": self.cancelled,
            "in_flight": self.in_flight,
            "exhausted": self.exhausted,
            "halted": self.halted,
            "failures": {name: t.to_json() for name, t in sorted(self.failures.items())},
            "notes": {name: t.to_json() for name, t in sorted(self.notes.items())},
            "lost": {kind: t.to_json() for kind, t in sorted(self.lost.items())},
        }


_COUNTS = (
    "submitted",
    "accepted",
    "completed",
    "rejected",
    "delivered",
    "unfinished",
    "cancelled",
    "in_flight",
)


def merge(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """One snapshot from several processes' (counts added, examples pooled up to EXAMPLES)."""
    total: dict[str, Any] = dict.fromkeys(_COUNTS, 0)
    total["exhausted"] = bool(snapshots) and all(s["exhausted"] for s in snapshots)
    total["halted"] = next((s["halted"] for s in snapshots if s.get("halted")), None)
    for part in ("failures", "notes", "lost"):
        tallies: dict[str, Tally] = {}
        for snapshot in snapshots:
            for name, data in snapshot[part].items():
                tally = tallies.setdefault(name, Tally())
                tally.count += data["count"]
                room = EXAMPLES - len(tally.examples)
                tally.examples.extend(data["examples"][: max(room, 0)])
        total[part] = {name: t.to_json() for name, t in sorted(tallies.items())}
    for snapshot in snapshots:
        for name in _COUNTS:
            total[name] += snapshot[name]
    return total


def example_of(result: CheckResult) -> dict[str, Any]:
    """A failing or noted check as a JSON-ready example: endpoint, reason, evidence."""
    return {
        "endpoint": result.endpoint,
        "reason": result.reason,
        "evidence": [e.to_json() for e in result.evidence],
    }
