"""The load report: per-step latencies, throughput, failures by check, lost jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from mockserver.load.ledger import LOST_KINDS

# Percentiles shown per step (Locust keeps the samples; these are read from it).
PERCENTILES = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class StepStats:
    """One step's requests and latencies, in milliseconds."""

    requests: int
    failures: int
    average: float
    maximum: float
    percentiles: dict[float, float]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data: dict[str, Any] = {
            "requests": self.requests,
            "failures": self.failures,
            "avg_ms": round(self.average, 1),
            "max_ms": round(self.maximum, 1),
        }
        for share, value in self.percentiles.items():
            data[f"p{share * 100:g}_ms"] = round(value, 1)
        return data


@dataclass
class LoadSummary:
    """A whole run: what was asked, what the ledger counted, what Locust measured."""

    base_url: str
    auth_scheme: str
    models: list[str]
    users: int
    spawn_rate: float
    duration: float
    elapsed: float
    workers: int
    ledger: dict[str, Any]  # a (merged) ledger snapshot
    steps: dict[str, StepStats] = field(default_factory=dict)
    requests: int = 0
    interrupted: bool = False

    @property
    def failures(self) -> int:
        """Failed checks, all names together."""
        return sum(t["count"] for t in self.ledger["failures"].values())

    @property
    def lost(self) -> int:
        """Lost jobs, all kinds together."""
        return sum(t["count"] for t in self.ledger["lost"].values())

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing was lost."""
        return self.failures == 0 and self.lost == 0 and not self.interrupted

    def to_json(self) -> dict[str, Any]:
        """The `--json` document; its top level always has jobs_submitted, jobs_completed,
        failures and lost_jobs (counts)."""
        seconds = max(self.elapsed, 1e-9)
        lost = {
            kind: {**tally, "meaning": LOST_KINDS[kind]}
            for kind, tally in self.ledger["lost"].items()
        }
        return {
            "ok": self.ok,
            "jobs_submitted": self.ledger["submitted"],
            "jobs_accepted": self.ledger["accepted"],
            "jobs_completed": self.ledger["completed"],
            "jobs_rejected": self.ledger["rejected"],
            "jobs_delivered": self.ledger["delivered"],
            "jobs_unfinished": self.ledger["unfinished"],
            "failures": self.failures,
            "lost_jobs": self.lost,
            "failures_by_check": self.ledger["failures"],
            "notes_by_check": self.ledger["notes"],
            "lost_by_kind": lost,
            "throughput": {
                "jobs_completed_per_second": round(self.ledger["completed"] / seconds, 2),
                "requests_per_second": round(self.requests / seconds, 2),
            },
            "steps": {name: stats.to_json() for name, stats in self.steps.items()},
            "run": {
                "base_url": self.base_url,
                "auth_scheme": self.auth_scheme,
                "models": self.models,
                "users": self.users,
                "spawn_rate": self.spawn_rate,
                "duration_seconds": self.duration,
                "elapsed_seconds": round(self.elapsed, 2),
                "workers": self.workers,
                "interrupted": self.interrupted,
            },
        }


def progress_line(elapsed: float, users: int, ledger: dict[str, Any], requests: int) -> str:
    """One line of progress while the run goes on."""
    failures = sum(t["count"] for t in ledger["failures"].values())
    lost = sum(t["count"] for t in ledger["lost"].values())
    rate = requests / elapsed if elapsed > 0 else 0.0
    return (
        f"{elapsed:6.1f} s  users {users:<4} jobs {ledger['submitted']} submitted,"
        f" {ledger['completed']} completed, {ledger['in_flight']} in flight"
        f"  failures {failures}  lost {lost}  {rate:.1f} req/s"
    )


def print_summary(summary: LoadSummary, console: Console) -> None:
    """The report for people: steps, failures with evidence, lost jobs, the verdict."""
    data = summary.to_json()
    steps = Table(
        "step", "requests", "failed", *(f"p{p * 100:g} ms" for p in PERCENTILES), "max ms"
    )
    for name, stats in summary.steps.items():
        steps.add_row(
            name,
            str(stats.requests),
            str(stats.failures),
            *(f"{stats.percentiles.get(p, 0):.0f}" for p in PERCENTILES),
            f"{stats.maximum:.0f}",
        )
    console.print(steps)
    throughput = data["throughput"]
    console.print(
        f"{data['jobs_submitted']} jobs submitted, {data['jobs_accepted']} accepted"
        f" ({data['jobs_rejected']} not),"
        f" {data['jobs_completed']} completed, {data['jobs_delivered']} delivered"
        f" (result and media), {data['jobs_unfinished']} cut by the end of the run;"
        f" {throughput['jobs_completed_per_second']} jobs/s,"
        f" {throughput['requests_per_second']} requests/s over {summary.elapsed:.1f} s",
        highlight=False,
    )
    for title, part in (("failed check", "failures"), ("lost job", "lost")):
        for name, tally in summary.ledger[part].items():
            console.print(f"[red]✗ {title} {name}[/red]: {tally['count']}", highlight=False)
            for example in tally["examples"]:
                console.print(f"    {example['reason']}", highlight=False, markup=False)
                for evidence in example["evidence"][:2]:
                    answer = evidence["error"] or f"{evidence['status_code']} {evidence['excerpt']}"
                    line = f"      {evidence['method']} {evidence['url']} -> {answer}"
                    console.print(line[:300], highlight=False, markup=False)
    for name, tally in summary.ledger["notes"].items():
        reason = tally["examples"][0]["reason"] if tally["examples"] else ""
        console.print(
            f"[yellow]note {name}[/yellow]: {tally['count']} times, e.g. {reason}", highlight=False
        )
    verdict = (
        "[green]OK[/green]: nothing failed, nothing lost"
        if summary.ok
        else f"[red]NOT OK[/red]: {summary.failures} failed check(s), {summary.lost} lost job(s)"
        + (" (interrupted)" if summary.interrupted else "")
    )
    console.print(verdict)
