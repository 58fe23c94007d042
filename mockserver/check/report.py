"""A check report as a terminal summary, Markdown, JUnit XML and JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mockserver.check.results import CheckResult, Report, Verdict, shorten

_TERMINAL_EVIDENCE = 240
_STYLE = {
    Verdict.PASS: "green",
    Verdict.FAIL: "bold red",
    Verdict.NOTE: "yellow",
    Verdict.SKIP: "dim",
}


def _by_check(report: Report) -> dict[str, dict[Verdict, int]]:
    table: dict[str, dict[Verdict, int]] = defaultdict(lambda: dict.fromkeys(Verdict, 0))
    for result in report.results:
        table[result.check][result.verdict] += 1
    return dict(sorted(table.items()))


def _sorted(report: Report, kind: Verdict) -> list[CheckResult]:
    return sorted(
        (r for r in report.results if r.verdict is kind),
        key=lambda r: (r.scenario, r.endpoint, r.check),
    )


def _groups(report: Report, kind: Verdict) -> list[tuple[str, str, list[CheckResult]]]:
    """Results of one verdict grouped by (check, reason): a quirk seen on eleven
    endpoints is one finding, listed once with where it was seen."""
    groups: dict[tuple[str, str], list[CheckResult]] = defaultdict(list)
    for result in _sorted(report, kind):
        groups[(result.check, result.reason)].append(result)
    return [(check, reason, results) for (check, reason), results in groups.items()]


def _where(results: list[CheckResult], limit: int = 3) -> str:
    names = [f"{r.scenario}[{r.endpoint}]" for r in results]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def verdict(report: Report) -> str:
    """One line: how it went."""
    counts = report.counts()
    parts = ", ".join(f"{counts.get(o, 0)} {o.value}" for o in Verdict)
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
    for kind in Verdict:
        table.add_column(kind.value, justify="right", style=_STYLE[kind])
    for check, counts in _by_check(report).items():
        table.add_row(check, *(str(counts[o] or "") for o in Verdict))
    console.print(table)
    for kind in (Verdict.FAIL, Verdict.NOTE, Verdict.SKIP):
        for check, reason, results in _groups(report, kind):
            console.print(Text(f"{kind.value.upper()} {check}: ", _STYLE[kind]), end="")
            console.print(Text(f"{reason} ({_where(results)})"))
            if kind is Verdict.SKIP:
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
        "| check | " + " | ".join(o.value for o in Verdict) + " |",
        "|---|" + "---:|" * len(Verdict),
    ]
    for check, counts in _by_check(report).items():
        lines.append(f"| {check} | " + " | ".join(str(counts[o]) for o in Verdict) + " |")
    titles = {Verdict.FAIL: "Failures", Verdict.NOTE: "Notes", Verdict.SKIP: "Not run"}
    for kind, title in titles.items():
        results = _sorted(report, kind)
        if not results:
            continue
        lines += ["", f"## {title}", ""]
        for check, reason, group in _groups(report, kind):
            lines.append(f"- **{check}**: {reason} ({_where(group, limit=len(group))})")
            if kind is not Verdict.SKIP and group[0].evidence:
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
        counts = {o: sum(r.verdict is o for r in results) for o in Verdict}
        suite = ET.SubElement(
            root,
            "testsuite",
            name=scenario,
            tests=str(len(results)),
            failures=str(counts[Verdict.FAIL]),
            skipped=str(counts[Verdict.SKIP]),
            errors="0",
        )
        for result in results:
            case = ET.SubElement(
                suite, "testcase", classname=scenario, name=f"{result.endpoint} {result.check}"
            )
            evidence = "\n".join(e.line() for e in result.evidence)
            if result.verdict is Verdict.FAIL:
                failure = ET.SubElement(case, "failure", message=result.reason)
                failure.text = evidence
            elif result.verdict is Verdict.SKIP:
                ET.SubElement(case, "skipped", message=result.reason)
            elif result.verdict is Verdict.NOTE:
                out = ET.SubElement(case, "system-out")
                out.text = f"NOTE: {result.reason}\n{evidence}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def as_json(report: Report) -> str:
    """The report as JSON."""
    return json.dumps(report.to_json(), indent=2) + "\n"
