"""A check report as a terminal summary, Markdown, JUnit XML and JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mockserver.check.results import CheckResult, Outcome, Report, shorten

_TERMINAL_EVIDENCE = 240
_STYLE = {
    Outcome.PASS: "green",
    Outcome.FAIL: "bold red",
    Outcome.NOTE: "yellow",
    Outcome.SKIP: "dim",
}


def _by_check(report: Report) -> dict[str, dict[Outcome, int]]:
    table: dict[str, dict[Outcome, int]] = defaultdict(lambda: dict.fromkeys(Outcome, 0))
    for result in report.results:
        table[result.check][result.outcome] += 1
    return dict(sorted(table.items()))


def _sorted(report: Report, outcome: Outcome) -> list[CheckResult]:
    return sorted(
        (r for r in report.results if r.outcome is outcome),
        key=lambda r: (r.scenario, r.endpoint, r.check),
    )


def _groups(report: Report, outcome: Outcome) -> list[tuple[str, str, list[CheckResult]]]:
    """Results of one outcome grouped by (check, reason): a quirk seen on eleven
    endpoints is one finding, listed once with where it was seen."""
    groups: dict[tuple[str, str], list[CheckResult]] = defaultdict(list)
    for result in _sorted(report, outcome):
        groups[(result.check, result.reason)].append(result)
    return [(check, reason, results) for (check, reason), results in groups.items()]


def _where(results: list[CheckResult], limit: int = 3) -> str:
    names = [f"{r.scenario}[{r.endpoint}]" for r in results]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def verdict(report: Report) -> str:
    """One line: how it went."""
    counts = report.counts()
    parts = ", ".join(f"{counts.get(o, 0)} {o.value}" for o in Outcome)
    state = "CONFORMS" if report.ok else "DEVIATES"
    if report.interrupted:
        state = f"INTERRUPTED (partial report; {report.cancelled} request(s) cancelled), {state}"
    return (
        f"{state}: {parts} ({len(report.results)} checks, {report.submits} billable submits,"
        f" {report.seconds:.1f} s)"
    )


def print_terminal(report: Report, console: Console) -> None:
    """The summary table, then every failure and note with its evidence."""
    table = Table(title=f"fal queue protocol check of {report.base_url}")
    table.add_column("check")
    for outcome in Outcome:
        table.add_column(outcome.value, justify="right", style=_STYLE[outcome])
    for check, counts in _by_check(report).items():
        table.add_row(check, *(str(counts[o] or "") for o in Outcome))
    console.print(table)
    for outcome in (Outcome.FAIL, Outcome.NOTE, Outcome.SKIP):
        for check, reason, results in _groups(report, outcome):
            console.print(Text(f"{outcome.value.upper()} {check}: ", _STYLE[outcome]), end="")
            console.print(Text(f"{reason} ({_where(results)})"))
            if outcome is Outcome.SKIP:
                continue
            for evidence in results[0].evidence[:2]:
                console.print(Text(f"    {shorten(evidence.line(), _TERMINAL_EVIDENCE)}", "dim"))
    console.print(Text(verdict(report), "bold green" if report.ok else "bold red"))


def markdown(report: Report) -> str:
    """The report as Markdown: summary table, then failures, notes and skips."""
    lines = [
        f"# fal queue protocol check of {report.base_url}",
        "",
        f"Auth scheme `{report.auth_scheme}`. {verdict(report)}",
        "",
        "| check | " + " | ".join(o.value for o in Outcome) + " |",
        "|---|" + "---:|" * len(Outcome),
    ]
    for check, counts in _by_check(report).items():
        lines.append(f"| {check} | " + " | ".join(str(counts[o]) for o in Outcome) + " |")
    titles = {Outcome.FAIL: "Failures", Outcome.NOTE: "Notes", Outcome.SKIP: "Not run"}
    for outcome, title in titles.items():
        results = _sorted(report, outcome)
        if not results:
            continue
        lines += ["", f"## {title}", ""]
        for check, reason, group in _groups(report, outcome):
            lines.append(f"- **{check}**: {reason} ({_where(group, limit=len(group))})")
            if outcome is not Outcome.SKIP and group[0].evidence:
                lines.append("")
                lines.append("  ```")
                lines += [f"  {e.line()}" for e in group[0].evidence[:2]]
                lines.append("  ```")
    return "\n".join(lines) + "\n"


def junit(report: Report) -> str:
    """The report as JUnit XML: a suite per scenario, a case per check."""
    root = ET.Element("testsuites", name="fal-queue-check")
    suites: dict[str, list[CheckResult]] = defaultdict(list)
    for result in report.results:
        suites[result.scenario].append(result)
    for scenario, results in sorted(suites.items()):
        counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
        suite = ET.SubElement(
            root,
            "testsuite",
            name=scenario,
            tests=str(len(results)),
            failures=str(counts[Outcome.FAIL]),
            skipped=str(counts[Outcome.SKIP]),
            errors="0",
        )
        for result in results:
            case = ET.SubElement(
                suite, "testcase", classname=scenario, name=f"{result.endpoint} {result.check}"
            )
            evidence = "\n".join(e.line() for e in result.evidence)
            if result.outcome is Outcome.FAIL:
                failure = ET.SubElement(case, "failure", message=result.reason)
                failure.text = evidence
            elif result.outcome is Outcome.SKIP:
                ET.SubElement(case, "skipped", message=result.reason)
            elif result.outcome is Outcome.NOTE:
                out = ET.SubElement(case, "system-out")
                out.text = f"NOTE: {result.reason}\n{evidence}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def as_json(report: Report) -> str:
    """The report as JSON."""
    return json.dumps(report.to_json(), indent=2) + "\n"
