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
    # A two-sided run's reconciliation with the upstream (`mockserver.load.twosided`).
    two_sided: dict[str, Any] | None = None

    @property
    def failures(self) -> int:
        """Failed checks, all names together (the two-sided ones too)."""
        return sum(t["count"] for t in self.failures_by_check.values())

    @property
    def failures_by_check(self) -> dict[str, dict[str, Any]]:
        """Check name -> count and examples, the two-sided checks' failures included."""
        merged = dict(self.ledger["failures"])
        for name, tally in (self.two_sided or {}).get("failures_by_check", {}).items():
            if name in merged:  # one name, one concept: add up, keep the first examples
                count = merged[name]["count"] + tally["count"]
                merged[name] = {**merged[name], "count": count}
            else:
                merged[name] = tally
        return dict(sorted(merged.items()))

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
            "jobs_cancelled": self.ledger.get("cancelled", 0),
            "failures": self.failures,
            "lost_jobs": self.lost,
            "failures_by_check": self.failures_by_check,
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
            **({"two_sided": self.two_sided} if self.two_sided is not None else {}),
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
        f" (result and media), {data['jobs_cancelled']} cancelled by their customer,"
        f" {data['jobs_unfinished']} cut by the end of the run;"
        f" {throughput['jobs_completed_per_second']} jobs/s,"
        f" {throughput['requests_per_second']} requests/s over {summary.elapsed:.1f} s",
        highlight=False,
    )
    if summary.two_sided is not None:
        _print_two_sided(summary.two_sided, console)
    for title, tallies in (
        ("failed check", summary.failures_by_check),
        ("lost job", summary.ledger["lost"]),
    ):
        for name, tally in tallies.items():
            console.print(f"[red]✗ {title} {name}[/red]: {tally['count']}", highlight=False)
            for example in tally["examples"]:
                console.print(f"    {example['reason']}", highlight=False, markup=False)
                for evidence in example["evidence"][:2]:
                    answer = evidence["error"] or f"{evidence['status_code']} {evidence['excerpt']}"
                    line = f"      {evidence['method']} {evidence['url']} -> {answer}"
                    console.print(line[:300], highlight=False, markup=False)
    notes = {**summary.ledger["notes"], **(summary.two_sided or {}).get("notes_by_check", {})}
    for name, tally in notes.items():
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


def _print_two_sided(section: dict[str, Any], console: Console) -> None:
    """Both sides: what reached the upstream, and each two-sided check's counts."""
    console.print(
        f"two-sided (markers {section['marker_prefix']}-*): {section['upstream']['summary']}",
        highlight=False,
        markup=False,
    )
    table = Table("two-sided check", "checked", "passed", "failed", "noted", "skipped")
    for name, counts in section["checks"].items():
        failed = str(counts["failed"])
        table.add_row(
            name,
            str(counts["checked"]),
            str(counts["passed"]),
            f"[red]{failed}[/red]" if counts["failed"] else failed,
            str(counts["noted"]),
            str(counts["skipped"]),
        )
    console.print(table)
    if section.get("halted"):
        console.print(f"[red]halted[/red]: {section['halted']}", highlight=False)
