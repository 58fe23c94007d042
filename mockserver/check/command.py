"""`mockserver check`: replay the scenarios against a server and report conformance."""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from mockserver.catalog import Catalog, Model
from mockserver.check import report as reports
from mockserver.check import twosided
from mockserver.check.pacing import RealPacer
from mockserver.check.plan import Planned, billable, plan, refusable
from mockserver.check.realtime import open_websocket
from mockserver.check.receiver import WebhookReceiver
from mockserver.check.results import CheckResult, Report, Verdict
from mockserver.check.runner import Checker, run_interruptible
from mockserver.check.scenarios import load_scenarios, select
from mockserver.check.target import Settings, Target
from mockserver.check.upstream import UpstreamControl
from mockserver.cli_auth import add_auth_options, key_from_env, scheme_of
from mockserver.cli_output import error, plain
from mockserver.webhooks import FAL_JWKS_URL

DEFAULT_MAX_REQUESTS = 40

EPILOG = """\
exit codes: 0 nothing failed (notes are fine), 1 some check failed, 2 bad usage,
130 interrupted (Ctrl-C cancels the requests still running and writes the partial report).

examples:
  mockserver check --base-url http://127.0.0.1:8000 --dry-run
  FAL_KEY=k mockserver check --base-url http://127.0.0.1:8000
  MY_KEY=k mockserver check --base-url https://proxy.example --auth-scheme bearer \\
      --key-env MY_KEY --scenarios happy-path --models 'fal-ai/flux-1/*' --markdown report.md
  # two-sided: the intermediary at :8001 uses the mock at :8000 as its fal upstream
  FAL_KEY=k SECOND_KEY=k2 mockserver check --base-url http://127.0.0.1:8001 \\
      --auth-scheme bearer --second-key-env SECOND_KEY \\
      --upstream-control http://127.0.0.1:8000/_mock
"""


def add_parser(commands: Any) -> None:
    """Register the `check` command."""
    check = commands.add_parser(
        "check",
        help="replay the contract scenarios against a server and report where it deviates",
        description="Run the scenarios of contracts/scenarios/ against a fal queue server (fal"
        " itself, an intermediary, or this mock) and report every check as pass, fail (violates"
        " the protocol), note (a known quirk, such as Bearer auth or URLs to rewrite) or skip,"
        " with the requests and answers as evidence. The key is read from an environment"
        " variable and never printed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--base-url", required=True, metavar="URL", help="the server's queue base")
    add_auth_options(check)
    check.add_argument(
        "--second-key-env",
        metavar="NAME",
        help="variable holding a second key, for the cross-key check (skipped without)",
    )
    check.add_argument(
        "--scenarios",
        action="append",
        metavar="GLOB",
        help="run only scenarios whose id matches (repeatable; default: all)",
    )
    check.add_argument(
        "--models",
        action="append",
        metavar="GLOB",
        help="run only on endpoints whose id matches (repeatable; default: each scenario's)",
    )
    check.add_argument(
        "--scenarios-dir",
        action="append",
        type=Path,
        metavar="DIR",
        help="read scenarios from DIR instead of the shipped ones (repeatable)",
    )
    check.add_argument(
        "--contracts",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="extra contracts directory for endpoint inputs and output schemas (repeatable)",
    )
    check.add_argument(
        "--max-requests",
        type=int,
        default=DEFAULT_MAX_REQUESTS,
        metavar="N",
        help="spending guard: at most N billable submits; scenarios beyond are not run"
        " (default: %(default)s)",
    )
    check.add_argument(
        "--dry-run", action="store_true", help="list what would be sent, send nothing"
    )
    check.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="per job: fail a request not COMPLETED in time (default: %(default)s)",
    )
    check.add_argument(
        "--request-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="per HTTP request (default: %(default)s)",
    )
    check.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="between status polls (default: %(default)s)",
    )
    check.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="scenarios run at once (default: %(default)s)",
    )
    check.add_argument(
        "--webhook-listen",
        type=_listen_address,
        metavar="HOST:PORT",
        help="run the webhook scenario: receive webhooks on HOST:PORT (off by default;"
        " the server under check must be able to reach it, see --webhook-url)",
    )
    check.add_argument(
        "--webhook-url",
        metavar="URL",
        help="the public URL the server should call for --webhook-listen (default:"
        " http://HOST:PORT), e.g. a tunnel to it",
    )
    check.add_argument(
        "--webhook-jwks-url",
        default=FAL_JWKS_URL,
        metavar="URL",
        help="key set webhook signatures must verify with (default: fal's, %(default)s)",
    )
    check.add_argument(
        "--upstream-control",
        metavar="URL",
        help="two-sided mode: the server under check uses a mock (mockserver serve, official"
        " profile) as its fal upstream, and this is that mock's control API (BASE/_mock)."
        " Adds checks that read what reached the upstream: forwarded input, one upstream"
        " submit per customer submit, keys, isolation of customers, outcomes, cancels,"
        " X-Fal headers and webhooks (runs on the first selected model with a prompt)",
    )
    check.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    check.add_argument("--junit", type=Path, metavar="FILE", help="write the report as JUnit XML")
    check.add_argument("--markdown", type=Path, metavar="FILE", help="write the report as Markdown")


def run(args: argparse.Namespace, console: Console, errors: Console) -> int:
    """Execute `mockserver check`; returns the exit code."""
    problem = _usage_problem(args)
    if problem:
        error(errors, "check", problem)
        return 2
    catalog = Catalog.load(*args.contracts)
    scenarios = select(load_scenarios(*(args.scenarios_dir or ())), args.scenarios)
    models = [
        m
        for m in catalog
        if not args.models or any(fnmatch.fnmatch(m.endpoint_id, p) for p in args.models)
    ]
    planned = plan(scenarios, models, args.max_requests, receiver=bool(args.webhook_listen))
    if not planned:
        error(errors, "check", "no scenario runs on the selected models")
        return 2
    two_sided = None
    if args.upstream_control:
        two_sided = twosided.model_for(models)
        if two_sided is None:
            error(errors, "check", "--upstream-control needs a model with a prompt")
            return 2
    if args.dry_run:
        _print_plan(planned, args, console)
        if two_sided is not None:
            plain(
                console,
                f"two-sided on {two_sided.endpoint_id}: about {twosided.BILLABLE_SUBMITS}"
                f" submits to the mock at {args.upstream_control}, read back there",
            )
        return 0
    try:
        key = key_from_env(args.key_env)
    except ValueError as exc:
        error(errors, "check", str(exc))
        return 2
    second = os.environ.get(args.second_key_env, "") if args.second_key_env else None
    if args.second_key_env and not second:
        error(errors, "check", f"{args.second_key_env} is empty")
        return 2
    target = Target(
        args.base_url.rstrip("/"),
        key,
        scheme_of(args),
        second,
    )
    settings = Settings(
        concurrency=args.concurrency,
        job_timeout=args.timeout,
        request_timeout=args.request_timeout,
        poll_interval=args.poll_interval,
        max_requests=args.max_requests,
        jwks_url=args.webhook_jwks_url,
    )
    receiver = None
    if args.webhook_listen:
        host, port = args.webhook_listen
        receiver = WebhookReceiver(host, port, args.webhook_url or f"http://{host}:{port}")
    try:
        upstream = (args.upstream_control, two_sided) if two_sided is not None else None
        result = asyncio.run(_check(target, settings, planned, console, receiver, upstream))
    except KeyboardInterrupt:
        # A second Ctrl-C while the first one's cleanup runs: stop now.
        error(errors, "check", "interrupted twice; no report written")
        return 130
    reports.print_terminal(result, console)
    for path, render in (
        (args.json, reports.as_json),
        (args.junit, reports.junit),
        (args.markdown, reports.markdown),
    ):
        if path is not None:
            path.write_text(render(result), encoding="utf-8")
            plain(console, f"wrote {path}")
    if result.interrupted:
        message = (
            f"interrupted; the report is partial, {result.cancelled} request(s) still running"
            " were cancelled"
        )
        error(errors, "check", message)
        return 130
    return 0 if result.ok else 1


async def _check(
    target: Target,
    settings: Settings,
    planned: list[Planned],
    console: Console,
    receiver: WebhookReceiver | None,
    upstream: tuple[str, Model] | None = None,
) -> Report:
    units = {item.label for item in planned}
    if upstream is not None:
        units.add("two-sided")
    with Progress(
        TextColumn("[bold]checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("check", total=len(units), failed=0)
        failed = 0

        def seen(result: CheckResult) -> None:
            nonlocal failed
            if result.verdict is Verdict.FAIL:
                failed += 1
                console.print(Text.assemble(("FAIL", "red"), f" {result.name}: {result.reason}"))
            progress.update(task, failed=failed)

        def finished(item: Planned) -> None:
            progress.advance(task)

        limits = httpx.Limits(max_connections=settings.concurrency * 2)
        # httpx's own default (5 s) would also bound the silence between a
        # stream's events: a fal-like server that sends keep-alives every 5 s to
        # a job queued longer than that failed as a ReadTimeout. --request-timeout
        # is the bound the user chose for any one request (and between bytes).
        timeout = httpx.Timeout(settings.request_timeout)
        async with httpx.AsyncClient(
            limits=limits, timeout=timeout, follow_redirects=False
        ) as client:
            checker = Checker(
                target,
                client,
                settings=settings,
                on_result=seen,
                on_unit=finished,
                receiver=receiver,
                websockets=open_websocket,
            )
            if receiver is not None:
                await receiver.start()
            try:
                report = await run_interruptible(checker, planned)
            finally:
                if receiver is not None:
                    await receiver.stop()
            if upstream is not None and not report.interrupted:
                control_url, model = upstream
                customer = twosided.Customer(
                    target.base_url, target.key, target.auth_scheme, target.second_key
                )
                pacer = RealPacer()
                two = twosided.TwoSidedChecker(
                    customer,
                    UpstreamControl(client, control_url, pacer, settings.request_timeout),
                    client,
                    model,
                    pacer,
                    poll_interval=settings.poll_interval,
                    job_timeout=settings.job_timeout,
                    request_timeout=settings.request_timeout,
                    on_result=seen,
                )
                started = time.monotonic()
                report.results.extend(await two.run())
                report.submits += two.submits
                report.seconds += time.monotonic() - started
                progress.advance(task)
            return report


def _listen_address(value: str) -> tuple[str, int]:
    """`HOST:PORT` (argparse type of --webhook-listen)."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"takes HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _usage_problem(args: argparse.Namespace) -> str | None:
    parts = urlsplit(args.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"--base-url must be an http(s) URL, got {args.base_url!r}"
    for name in ("timeout", "request_timeout", "poll_interval"):
        if getattr(args, name) <= 0:
            return f"--{name.replace('_', '-')} must be positive"
    if args.upstream_control:
        control = urlsplit(args.upstream_control)
        if control.scheme not in ("http", "https") or not control.netloc:
            return f"--upstream-control must be an http(s) URL, got {args.upstream_control!r}"
    if args.webhook_url and not args.webhook_listen:
        return "--webhook-url needs --webhook-listen (where the receiver runs)"
    if args.concurrency < 1 or args.max_requests < 0:
        return "--concurrency must be at least 1 and --max-requests at least 0"
    return None


def _print_plan(planned: list[Planned], args: argparse.Namespace, console: Console) -> None:
    """What a run would send, step by step; nothing is sent."""
    base = args.base_url.rstrip("/")
    for item in planned:
        if item.skip is not None:
            plain(console, f"{item.label}: not run: {item.skip.reason}")
            continue
        console.print(Text.assemble((item.label, "bold"), f": {item.scenario.title}"))
        for line in item.describe(base):
            plain(console, f"  {line}")
    refused = refusable(planned)
    plain(
        console,
        f"{len(planned)} scenario runs, {billable(planned)} billable submits (limit"
        f" {args.max_requests}; {refused} more if the server takes the {refused} it should"
        " refuse); nothing was sent (--dry-run)",
    )
