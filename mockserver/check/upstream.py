"""The upstream side of a two-sided check: what reached the mock, matched to a customer.

An intermediary under check uses the mock as its fal upstream. The checker
puts a unique marker in every input it sends the intermediary and reads back,
through the mock's control API (``GET /_mock/requests?marker=``), the upstream
submits holding that marker and every later request about the ids they were
given. Keys are compared by fingerprint only (`mockserver.redact`): the mock
never returns a key, and the checker never prints one.

The pure helpers here (`input_diff`, `leaked`, `billable`) are shared by
`mockserver check` and anything else that drives an intermediary in front of
the mock.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from mockserver.check.exchange import Exchange
from mockserver.check.http import exchange
from mockserver.check.pacing import Pacer
from mockserver.check.results import CheckResult, Evidence, Verdict, excerpt
from mockserver.markers import field_digests, marker_pattern
from mockserver.redact import fingerprint

# Anything that could be a key in a header or a body: fingerprinted, never shown.
_TOKEN = re.compile(r"[A-Za-z0-9_.~+/=:-]{8,}")
_BILLED = ("submit", "run", "run_stream")


def new_marker() -> str:
    """A marker unique to one customer request: put it in the input's text."""
    return "mk-" + uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class UpstreamRequest:
    """One request the mock (the upstream) received, as its control API lists it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    action: str
    request_id: str | None
    body: Any
    status_code: int
    key_fingerprints: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpstreamRequest:
        """Build from one entry of ``GET /_mock/requests``."""
        return cls(
            method=str(data.get("method", "")),
            path=str(data.get("path", "")),
            query=dict(data.get("query") or {}),
            headers=dict(data.get("headers") or {}),
            action=str(data.get("action", "")),
            request_id=data.get("request_id"),
            body=data.get("body"),
            status_code=int(data.get("status_code", 0)),
            key_fingerprints=tuple(data.get("key_fingerprints") or ()),
        )

    @property
    def billable(self) -> bool:
        """A submit the upstream accepted: a generation someone pays for."""
        return self.action in _BILLED and self.status_code == 200

    @property
    def key(self) -> str | None:
        """The fingerprint of the key it carried (None without one)."""
        return self.key_fingerprints[0] if self.key_fingerprints else None

    def evidence(self) -> Evidence:
        """This request as report evidence, marked as the upstream side."""
        shown: dict[str, Any] = {}
        if self.body is not None:
            shown["body"] = self.body
        fal = {k: v for k, v in self.headers.items() if k.startswith("x-fal-")}
        if fal:
            shown["x-fal headers"] = fal
        auth = self.headers.get("authorization")
        if auth is not None:
            shown["authorization"] = auth  # already masked by the mock: scheme only
        if self.key is not None:
            shown["key fingerprint"] = self.key
        query = "?" + "&".join(f"{k}={v}" for k, v in self.query.items()) if self.query else ""
        return Evidence(
            method=self.method,
            url=f"upstream {self.path}{query}",
            status_code=self.status_code,
            excerpt=excerpt(json.dumps(shown, separators=(",", ":"))),
        )


def billable(entries: Iterable[UpstreamRequest]) -> list[UpstreamRequest]:
    """The accepted submits among `entries`."""
    return [entry for entry in entries if entry.billable]


@dataclass(frozen=True)
class InputDiff:
    """How a forwarded input differs from what the customer sent."""

    dropped: tuple[str, ...]
    altered: tuple[tuple[str, Any, Any], ...]  # (field, sent, forwarded)
    added: tuple[tuple[str, Any], ...]  # (field, forwarded)

    @property
    def faithful(self) -> bool:
        """Nothing the customer sent was dropped or changed."""
        return not self.dropped and not self.altered

    def describe(self) -> str:
        """One line for a report."""
        parts = [f"dropped {name}" for name in self.dropped]
        parts += [f"{name}: sent {sent!r}, forwarded {got!r}" for name, sent, got in self.altered]
        parts += [f"added {name}={value!r}" for name, value in self.added]
        return "; ".join(parts) or "identical"


def input_diff(sent: Mapping[str, Any], forwarded: Mapping[str, Any]) -> InputDiff:
    """Compare, field by field, the customer's input with the upstream's."""
    dropped = tuple(name for name in sent if name not in forwarded)
    altered = tuple(
        (name, sent[name], forwarded[name])
        for name in sent
        if name in forwarded and forwarded[name] != sent[name]
    )
    added = tuple((name, forwarded[name]) for name in forwarded if name not in sent)
    return InputDiff(dropped, altered, added)


def leaked(texts: Iterable[tuple[str, str]], fingerprints: set[str]) -> list[str]:
    """Where (the labels of `texts`) a key with one of `fingerprints` appears.

    Every key-like token, and each half of a ``id:secret`` one, is
    fingerprinted and compared: the key itself is never needed.
    """
    found: list[str] = []
    for label, text in texts:
        for token in _TOKEN.findall(text):
            candidates = {token, *token.split(":")}
            if any(fingerprint(c) in fingerprints for c in candidates if c):
                found.append(label)
                break
    return found


def mask_fingerprinted(text: str, fingerprints: Iterable[str]) -> str:
    """`text` with every key-like token whose fingerprint (or a half's) is one of
    `fingerprints` replaced by ``***``: hides a key known only by fingerprint."""
    wanted = set(fingerprints)
    if not wanted:
        return text

    def mask(match: re.Match[str]) -> str:
        token = match.group(0)
        parts = {token, *token.split(":")}
        return "***" if any(fingerprint(p) in wanted for p in parts if p) else token

    return _TOKEN.sub(mask, text)


def customer_texts(exchanges: Iterable[Exchange]) -> list[tuple[str, str]]:
    """Everything a customer received, as (label, text): headers and bodies."""
    texts: list[tuple[str, str]] = []
    for item in exchanges:
        where = f"{item.method} {item.url}"
        for name, value in (item.headers or {}).items():
            texts.append((f"header {name} of {where}", value))
        texts.append((f"body of {where}", item.body.decode("utf-8", "replace")))
    return texts


# The control API's answers, read by plain functions: `UpstreamControl` (asyncio)
# and `mockserver load` (gevent, another HTTP client) share them.


def health_problem(answer: Exchange, control_url: str) -> str | None:
    """What is wrong with the mock's ``GET /health`` answer (None when it is up)."""
    data = answer.json_object()
    if answer.status_code != 200 or data is None or data.get("status") != "ok":
        return f"the mock's control API did not answer at {control_url}: {answer.describe()}"
    return None


def manual_clock(answer: Exchange) -> bool:
    """Is the mock whose ``GET /health`` answered this on a manual clock?"""
    clock = (answer.json_object() or {}).get("clock")
    return isinstance(clock, dict) and clock.get("manual") is True


def about_path(marker: str) -> str:
    """The control path listing every upstream request about `marker`."""
    return "/requests?" + str(httpx.QueryParams(marker=marker))


def requests_from(answer: Exchange) -> list[UpstreamRequest]:
    """The upstream requests a ``GET /requests`` answer lists (none when it failed)."""
    data = answer.json()
    if answer.status_code != 200 or not isinstance(data, list):
        return []
    return [UpstreamRequest.from_json(entry) for entry in data if isinstance(entry, dict)]


def marked_path(prefix: str) -> str:
    """The control path of what the mock counted for a watched prefix."""
    return "/markers?" + str(httpx.QueryParams(prefix=prefix))


def marked_from(answer: Exchange) -> dict[str, list[dict[str, Any]]]:
    """Marker -> upstream jobs, from a ``GET /markers`` answer (empty when it failed)."""
    markers = (answer.json_object() or {}).get("markers")
    return markers if answer.status_code == 200 and isinstance(markers, dict) else {}


class UpstreamControl:
    """The mock's control API, as the two-sided checker uses it."""

    def __init__(
        self, client: httpx.AsyncClient, control_url: str, pacer: Pacer, timeout: float
    ) -> None:
        self.client = client
        self.url = control_url.rstrip("/")
        self.pacer = pacer
        self.timeout = timeout
        self.manual_clock = False

    async def call(self, method: str, path: str, body: Any = None) -> Exchange:
        """One control request (an `Exchange`: failures are data, not exceptions)."""
        return await exchange(
            self.client, self.pacer, self.timeout, method, self.url + path, body=body
        )

    async def connect(self) -> str | None:
        """Read the mock's health; a problem as text (None when it answers)."""
        answer = await self.call("GET", "/health")
        problem = health_problem(answer, self.url)
        self.manual_clock = problem is None and manual_clock(answer)
        return problem

    async def about(self, marker: str) -> list[UpstreamRequest]:
        """Every upstream request about the customer request holding `marker`."""
        return requests_from(await self.call("GET", about_path(marker)))

    async def watch(self, prefix: str) -> bool:
        """Ask the mock to count accepted submits per marker ``<prefix>-<n>``."""
        answer = await self.call("POST", "/markers", {"prefix": prefix})
        return answer.status_code == 200

    async def marked(self, prefix: str) -> dict[str, list[dict[str, Any]]]:
        """Marker -> the upstream jobs (request id, key fingerprint, field digests,
        cancels) counted for it."""
        return marked_from(await self.call("GET", marked_path(prefix)))

    async def job(self, request_id: str) -> dict[str, Any] | None:
        """The upstream job's summary (state, cancelled, outcome, headers)."""
        answer = await self.call("GET", f"/jobs/{request_id}")
        return answer.json_object() if answer.status_code == 200 else None

    async def script(self, endpoint_id: str, outcome: dict[str, Any]) -> None:
        """The next upstream run of `endpoint_id` ends with `outcome`."""
        await self.call(
            "POST", "/outcomes", {"endpoint_id": endpoint_id, "outcome": outcome, "times": 1}
        )

    async def fault(self, fault: dict[str, Any]) -> None:
        """Plan a transport fault on the upstream."""
        await self.call("POST", "/faults", fault)

    async def clear_faults(self) -> None:
        """Forget faults not used up."""
        await self.call("DELETE", "/faults")

    async def advance(self, seconds: float) -> bool:
        """Move the mock's manual clock (False when its clock is real)."""
        if not self.manual_clock:
            return False
        answer = await self.call("POST", "/clock/advance", {"seconds": seconds})
        return answer.status_code == 200


@dataclass(frozen=True)
class Reconciliation:
    """Many customer submits against the upstream jobs they caused, by marker.

    For runs too long for the request log (a load run): the mock counts every
    accepted (billed) submit per marker of a watched prefix (`mockserver.markers`).
    """

    accepted: int  # customer submits the intermediary accepted
    billed: int  # upstream jobs holding one of the run's markers
    duplicated: dict[str, int]  # marker -> upstream jobs, where more than one
    missing: tuple[str, ...]  # accepted for a customer, never reached the upstream
    unclaimed: tuple[str, ...]  # upstream jobs no accepted customer submit explains
    customer_keyed: int  # upstream jobs owned by a customer's key

    @property
    def ok(self) -> bool:
        """One upstream job per accepted customer submit, all on the intermediary's key."""
        return not (self.duplicated or self.missing or self.unclaimed or self.customer_keyed)

    def describe(self) -> str:
        """One line for a report."""
        parts = [f"{self.accepted} customer submits accepted, {self.billed} upstream jobs"]
        if self.duplicated:
            extra = sum(self.duplicated.values()) - len(self.duplicated)
            parts.append(f"{len(self.duplicated)} submitted more than once ({extra} extra billed)")
        if self.missing:
            parts.append(f"{len(self.missing)} never reached the upstream")
        if self.unclaimed:
            parts.append(f"{len(self.unclaimed)} upstream jobs no customer submit explains")
        if self.customer_keyed:
            parts.append(f"{self.customer_keyed} upstream jobs on a customer's key")
        return "; ".join(parts)


def run_marker() -> str:
    """A prefix for one run's markers: `f"{prefix}-{n}"` for its n-th request."""
    return "run-" + uuid.uuid4().hex[:12]


def reconcile(
    accepted: Iterable[str],
    marked: Mapping[str, Sequence[Mapping[str, Any]]],
    customer_keys: Iterable[str] = (),
) -> Reconciliation:
    """Compare the markers of accepted customer submits with the upstream's jobs.

    `marked` is what the mock counted for the run's prefix (`UpstreamControl.marked`);
    `customer_keys` are the customers' keys, compared by fingerprint only.
    """
    wanted = list(accepted)
    expected = set(wanted)
    customers = {fingerprint(key) for key in customer_keys}
    keyed = sum(
        1 for jobs in marked.values() for job in jobs if job.get("key_fingerprint") in customers
    )
    return Reconciliation(
        accepted=len(wanted),
        billed=sum(len(jobs) for jobs in marked.values()),
        duplicated={m: len(jobs) for m, jobs in marked.items() if len(jobs) > 1},
        missing=tuple(m for m in wanted if not marked.get(m)),
        unclaimed=tuple(m for m in marked if m not in expected),
        customer_keyed=keyed,
    )


# -- Many jobs: the two-sided judgement of a load run --------------------------------
#
# A load run cannot ask the request log about every job (it is bounded, and a
# run makes many requests per job), so it records what each customer job sent
# and saw (`CustomerJob`), and after the run compares that with what the mock
# counted per marker (`UpstreamControl.marked`): one plain function, no I/O.

#: The checks of a two-sided load run, each judged per job, and what passing means.
LOAD_CHECKS: dict[str, str] = {
    "one-upstream-submit": "each accepted customer submit reached the upstream exactly once,"
    " a refused one never",
    "forwarded-input": "the upstream got the customer's input, field by field",
    "upstream-key": "the upstream saw the intermediary's key, never a customer's",
    "cancel-forwarded": "each customer cancel reached the upstream",
    "key-leak": "the upstream key is in nothing a customer received",
    "customer-isolation": "no result holds another job's input",
}


class _Unshown:
    """A forwarded value known only by its digest (the mock keeps no input values)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_ANOTHER_VALUE = _Unshown("another value")
_SOME_VALUE = _Unshown("<value>")


def forwarded_fields(sent: Mapping[str, Any], digests: Mapping[str, str]) -> InputDiff:
    """Compare, field by field, the customer's input with the digests of the
    upstream's (`mockserver.markers.field_digests`)."""
    mine = field_digests(sent)
    return InputDiff(
        dropped=tuple(name for name in sent if name not in digests),
        altered=tuple(
            (name, sent[name], _ANOTHER_VALUE)
            for name in sent
            if name in digests and digests[name] != mine[name]
        ),
        added=tuple((name, _SOME_VALUE) for name in digests if name not in sent),
    )


def foreign_markers(text: str, prefix: str, own: str) -> list[str]:
    """The markers of this run's other jobs that `text` (say, a result) holds."""
    return sorted(set(marker_pattern(prefix).findall(text)) - {own})


@dataclass
class CustomerJob:
    """One load job as its customer saw it: what the two-sided judgement needs.

    JSON-ready (a worker sends these to its master). `evidence` holds the
    customer's side as `Evidence` JSON, secrets already masked: the submit's
    answer under "submit", the answer showing a leak or a crossed result under
    that check's name.
    """

    marker: str
    endpoint: str
    sent: dict[str, Any]
    accepted: bool = False
    request_id: str | None = None
    cancelled: bool = False  # the customer asked to cancel it
    leak_scanned: bool = False  # its answers were searched for the upstream key
    leaks: list[str] = field(default_factory=list)  # where the upstream key appeared
    result_read: bool = False  # its result came back and was searched for markers
    foreign: list[str] = field(default_factory=list)  # other jobs' markers in its result
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CustomerJob:
        """Read back `to_json`."""
        return cls(**data)

    def shown(self, part: str) -> tuple[Evidence, ...]:
        """The customer-side evidence kept under `part` (none when not kept)."""
        data = self.evidence.get(part)
        return (Evidence(**data),) if data else ()


@dataclass(frozen=True)
class JobVerdict:
    """One two-sided check's verdict on one job (`marker`)."""

    marker: str
    result: CheckResult


def judge_jobs(
    jobs: Sequence[CustomerJob],
    marked: Mapping[str, Sequence[Mapping[str, Any]]],
    customer_keys: Iterable[str] = (),
    scenario: str = "two-sided load",
) -> tuple[Reconciliation, list[JobVerdict]]:
    """Every job of a run against the upstream jobs the mock counted per marker.

    Each check of `LOAD_CHECKS` gives one verdict per job it applies to (SKIP
    where it could not be judged); upstream jobs whose marker no customer job
    explains fail ``one-upstream-submit`` on their own.
    """
    keys = list(customer_keys)
    customers = {fingerprint(key) for key in keys}
    summary = reconcile((job.marker for job in jobs if job.accepted), marked, keys)
    verdicts: list[JobVerdict] = []

    def add(job: CustomerJob, check: str, verdict: Verdict, reason: str, *ev: Evidence) -> None:
        where = f"job {job.marker}" + (f" (request {job.request_id})" if job.request_id else "")
        result = CheckResult(scenario, job.endpoint, check, verdict, f"{where}: {reason}", ev)
        verdicts.append(JobVerdict(job.marker, result))

    for job in jobs:
        upstream = list(marked.get(job.marker, ()))
        both = (*job.shown("submit"), *(_upstream_evidence(u) for u in upstream[:2]))
        ids = ", ".join(str(u.get("request_id")) for u in upstream)
        if job.accepted and len(upstream) == 1:
            add(job, "one-upstream-submit", Verdict.PASS, "one upstream job", *both)
        elif job.accepted and not upstream:
            add(
                job,
                "one-upstream-submit",
                Verdict.FAIL,
                "accepted for the customer, but nothing holding its marker reached the upstream",
                *both,
            )
        elif job.accepted:
            add(
                job,
                "one-upstream-submit",
                Verdict.FAIL,
                f"one customer submit, {len(upstream)}"
                f" upstream jobs ({ids}): {len(upstream) - 1} billed too many",
                *both,
            )
        elif upstream:
            add(
                job,
                "one-upstream-submit",
                Verdict.FAIL,
                "the customer's submit was refused,"
                f" yet the upstream billed {len(upstream)} job(s) ({ids})",
                *both,
            )
        else:
            add(job, "one-upstream-submit", Verdict.PASS, "refused, and nothing billed upstream")
        if upstream:
            digests = upstream[0].get("fields")
            if not isinstance(digests, dict):
                add(job, "forwarded-input", Verdict.SKIP, "the mock kept no field digests")
            else:
                diff = forwarded_fields(job.sent, digests)
                verdict = Verdict.PASS
                if not diff.faithful:
                    verdict = Verdict.FAIL
                elif diff.added:  # a documented habit (defaults filled in), not a fault
                    verdict = Verdict.NOTE
                add(job, "forwarded-input", verdict, diff.describe(), *both)
            keyed = [u for u in upstream if u.get("key_fingerprint") in customers]
            if keyed:
                add(
                    job,
                    "upstream-key",
                    Verdict.FAIL,
                    "the upstream job is owned by the customer's key (fingerprint match)",
                    *both,
                )
            else:
                add(job, "upstream-key", Verdict.PASS, "on the intermediary's key")
        if job.cancelled:
            cancels = sum(int(u.get("cancels") or 0) for u in upstream)
            if not upstream:
                add(job, "cancel-forwarded", Verdict.SKIP, "no upstream job to cancel")
            elif cancels:
                add(job, "cancel-forwarded", Verdict.PASS, "the cancel reached the upstream")
            else:
                add(
                    job,
                    "cancel-forwarded",
                    Verdict.FAIL,
                    "the customer cancelled it, but the upstream received no cancel for it",
                    *both,
                )
        if job.leak_scanned:
            if job.leaks:
                more = f" and {len(job.leaks) - 1} more" if len(job.leaks) > 1 else ""
                add(
                    job,
                    "key-leak",
                    Verdict.FAIL,
                    f"the upstream key (by fingerprint) is in {job.leaks[0]}{more}",
                    *job.shown("key-leak"),
                )
            else:
                add(job, "key-leak", Verdict.PASS, "not in any answer")
        elif job.accepted:
            add(job, "key-leak", Verdict.SKIP, "the upstream key was not known yet")
        if job.result_read:
            if job.foreign:
                add(
                    job,
                    "customer-isolation",
                    Verdict.FAIL,
                    f"its result holds the input of {', '.join(job.foreign[:3])}",
                    *job.shown("customer-isolation"),
                )
            else:
                add(job, "customer-isolation", Verdict.PASS, "its result holds no other input")
    known = {job.marker for job in jobs}
    for marker in summary.unclaimed:
        if marker in known:  # a refused customer submit: judged above
            continue
        found = marked[marker]
        result = CheckResult(
            scenario,
            "",
            "one-upstream-submit",
            Verdict.FAIL,
            f"upstream job(s) holding marker {marker}, which no accepted customer job"
            " explains (billed, never answered to a customer)",
            tuple(_upstream_evidence(u) for u in found[:2]),
        )
        verdicts.append(JobVerdict(marker, result))
    return summary, verdicts


def _upstream_evidence(job: Mapping[str, Any]) -> Evidence:
    """An upstream job the mock counted, as evidence (ids and fingerprints only)."""
    shown = {
        "request_id": job.get("request_id"),
        "key fingerprint": job.get("key_fingerprint"),
        "cancels": job.get("cancels"),
        "fields": sorted(job.get("fields") or {}),
    }
    return Evidence(
        method="POST",
        url=f"upstream job {job.get('request_id')}",
        status_code=200,
        excerpt=excerpt(json.dumps(shown, separators=(",", ":"))),
    )
