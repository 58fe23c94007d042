"""After a two-sided load run: what reached the upstream, against what customers saw.

The users recorded each job (`CustomerJob`); the mock counted, per marker, the
upstream jobs it billed, their key, a digest of each input field and the
cancels they received. `mockserver.check.upstream.judge_jobs` (a plain
function, shared with `mockserver check`'s vocabulary) gives one verdict per
job and check; this module counts them per check, keeps a few failing
examples and adds to each the upstream request the mock's log still holds.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import Any

from mockserver.check.results import Evidence, Verdict
from mockserver.check.upstream import LOAD_CHECKS, CustomerJob, judge_jobs, mask_fingerprinted
from mockserver.load.ledger import EXAMPLES, Tally, example_of
from mockserver.load.upstream import ControlClient
from mockserver.redact import fingerprint

# The upstream requests shown per failing example (its submits: the forwarded input).
_UPSTREAM_SHOWN = 2


def reconcile_run(
    control: ControlClient,
    prefix: str,
    jobs: Sequence[CustomerJob],
    customer_keys: Iterable[str],
    upstream_keys: Iterable[str] = (),
    halted: str | None = None,
) -> dict[str, Any]:
    """The two-sided section of the load report (JSON-ready); `failures` is its total.

    `upstream_keys` (fingerprints) are masked wherever evidence could show them.
    """
    customers = list(customer_keys)
    marked = control.marked(prefix)
    summary, verdicts = judge_jobs(jobs, marked, customers)
    # The upstream key: as the users learnt it (whole and halves), and as the mock
    # counted it (a master's users run elsewhere); never a customer's.
    counted = {str(u.get("key_fingerprint")) for found in marked.values() for u in found}
    masked = frozenset(upstream_keys) | (counted - {fingerprint(k) for k in customers})
    counts: dict[str, dict[str, int]] = {
        name: dict.fromkeys(("passed", "failed", "noted", "skipped"), 0) for name in LOAD_CHECKS
    }
    failures: dict[str, Tally] = {}
    notes: dict[str, Tally] = {}
    key = {Verdict.PASS: "passed", Verdict.FAIL: "failed", Verdict.NOTE: "noted"}
    for verdict in verdicts:
        result = verdict.result
        counts[result.check][key.get(result.verdict, "skipped")] += 1
        if result.verdict not in (Verdict.FAIL, Verdict.NOTE):
            continue
        tallies = failures if result.verdict is Verdict.FAIL else notes
        tally = tallies.setdefault(result.check, Tally())
        room = len(tally.examples) < EXAMPLES
        tally.add(example_of(result))
        if room and result.verdict is Verdict.FAIL:
            # What the upstream received (the forwarded input), right after the
            # customer's side: the request log holds it for a while, not for ever.
            found = control.about(verdict.marker) or []
            shown = [u.evidence() for u in found if u.action == "submit"]
            evidence = tally.examples[-1]["evidence"]
            evidence[1:1] = [e.to_json() for e in shown[:_UPSTREAM_SHOWN]]
    for tally in (*failures.values(), *notes.values()):
        for example in tally.examples:
            example["evidence"] = [_masked(e, masked) for e in example["evidence"]]
    extra = sum(summary.duplicated.values()) - len(summary.duplicated)
    checks = {
        name: {
            "meaning": meaning,
            "checked": counts[name]["passed"] + counts[name]["failed"] + counts[name]["noted"],
            **counts[name],
            "examples": failures[name].examples if name in failures else [],
        }
        for name, meaning in LOAD_CHECKS.items()
    }
    return {
        "marker_prefix": prefix,
        "upstream_key_fingerprints": sorted(masked),
        "jobs_recorded": len(jobs),
        "upstream": {
            "customer_submits_accepted": summary.accepted,
            "upstream_jobs_billed": summary.billed,
            "submitted_more_than_once": len(summary.duplicated),
            "extra_billed": extra,
            "never_reached_upstream": len(summary.missing),
            "unexplained_upstream_jobs": len(summary.unclaimed),
            "on_a_customer_key": summary.customer_keyed,
            "summary": summary.describe(),
        },
        "checks": checks,
        "failures": sum(t.count for t in failures.values()),
        "failures_by_check": {name: t.to_json() for name, t in sorted(failures.items())},
        "notes_by_check": {name: t.to_json() for name, t in sorted(notes.items())},
        "halted": halted,
    }


def write_checks_csv(section: dict[str, Any], path: str) -> None:
    """The two-sided checks' counts as CSV (beside Locust's statistics with ``--csv``):
    one row per check, and its first failing example's reason."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        columns = ("checked", "passed", "failed", "noted", "skipped")
        writer.writerow(("check", *columns, "meaning", "first failure"))
        for name, counts in section["checks"].items():
            first = counts["examples"][0]["reason"] if counts["examples"] else ""
            writer.writerow((name, *(counts[c] for c in columns), counts["meaning"], first))


def mask_examples(snapshot: dict[str, Any], keys: Iterable[str]) -> None:
    """Mask the upstream key in the examples of a ledger snapshot's failures, notes and
    lost jobs: an answer that leaked it may be the evidence of a one-sided check too."""
    wanted = frozenset(keys)
    for part in ("failures", "notes", "lost"):
        for tally in snapshot[part].values():
            for example in tally["examples"]:
                example["evidence"] = [_masked(e, wanted) for e in example["evidence"]]
                example["reason"] = mask_fingerprinted(example["reason"], wanted)


def _masked(evidence: dict[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """Evidence JSON with the upstream key (known by fingerprint) masked."""
    shown = Evidence(**evidence)
    return {
        **shown.to_json(),
        "url": mask_fingerprinted(shown.url, keys),
        "excerpt": mask_fingerprinted(shown.excerpt, keys),
    }
