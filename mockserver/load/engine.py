"""Running the load on Locust: alone, as a master, or as a worker; then the report.

Imported only in the interpreter `mockserver load` starts, after Locust (whose
import patches the standard library with gevent).
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import gevent
import locust.runners
from locust.env import Environment
from locust.html import get_html_report
from locust.log import setup_logging
from locust.rpc import Message
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsEntry
from rich.console import Console

from mockserver.catalog import Catalog
from mockserver.check.upstream import CustomerJob, run_marker
from mockserver.cli_auth import key_from_env, scheme_of
from mockserver.load.command import standalone_parser, usage_problem
from mockserver.load.config import LoadConfig, split_budget
from mockserver.load.ledger import merge
from mockserver.load.report import PERCENTILES, LoadSummary, StepStats, print_summary, progress_line
from mockserver.load.session import Session, SetupError, takes_prompt
from mockserver.load.twosided import mask_examples, reconcile_run, write_checks_csv
from mockserver.load.upstream import ControlClient
from mockserver.load.user import JOB_REQUEST_TYPE, STEPS, TIME_TO_COMPLETE, user_class

# The custom message a master sends each worker: the config with its share of the budget.
SETUP_MESSAGE = "fal-load-setup"
# The key of a worker's ledger snapshot in its stats reports to the master.
REPORT_KEY = "fal_load"
# ... and of the two-sided job records that ended since its last report.
JOBS_KEY = "fal_load_jobs"
# Workers report to the master this often (Locust's default is 3 s): the master
# sees a spent budget and the last jobs done sooner.
WORKER_REPORT_INTERVAL = 1.0
_TICK = 0.2
_STEP_METHODS = {"submit": "POST", "cancel": "PUT", TIME_TO_COMPLETE: JOB_REQUEST_TYPE}

LedgerView = Callable[[], dict[str, Any]]


def main(argv: Sequence[str]) -> int:
    """Entry point of the load interpreter: `argv` as given to `mockserver`."""
    args = standalone_parser().parse_args(list(argv))
    console = Console(soft_wrap=True)
    errors = Console(stderr=True, soft_wrap=True)
    problem = usage_problem(args)
    try:
        if problem:
            raise SetupError(problem)
        return run(args, console)
    except (SetupError, ValueError) as exc:
        errors.print(f"mockserver load: error: {exc}", markup=False, highlight=False)
        return 2
    except KeyboardInterrupt:
        errors.print("mockserver load: interrupted", markup=False)
        return 130


def run(args: argparse.Namespace, console: Console) -> int:
    """One load run (or one worker's part of it); the exit code."""
    setup_logging("WARNING")
    logging.getLogger("locust").setLevel(logging.WARNING)
    # A master runs no users: it needs no key.
    key = os.environ.get(args.key_env, "") if args.master else key_from_env(args.key_env)
    session = Session(key, Catalog.load(*args.contracts))
    environment = Environment(user_classes=[user_class(session)], host=args.base_url)

    def stopping(**kwargs: Any) -> None:
        session.stopping = True  # jobs under way finish; none starts

    def starting(**kwargs: Any) -> None:
        session.stopping = False

    environment.events.test_stopping.add_listener(stopping)
    environment.events.test_start.add_listener(starting)
    if args.worker:
        return _work(args, session, environment, console)
    config = _config(args, session.catalog)
    control = _watch(config) if config.upstream_control else None
    environment.stop_timeout = config.job_timeout + config.request_timeout
    jobs: list[CustomerJob] = []
    if args.master:
        runner: locust.runners.Runner = environment.create_master_runner(
            args.master_bind_host, args.master_port
        )
        view = _drive_workers(args, config, environment, console, jobs)
    else:
        runner = environment.create_local_runner()
        session.configure(config)
        view = session.ledger.snapshot
    console.print(
        f"load on {config.base_url}: {args.users} users (+{args.spawn_rate:g}/s) for"
        f" {args.duration:g} s, at most {config.budget} submits, models:"
        f" {', '.join(config.endpoints)}",
        highlight=False,
    )
    started = time.monotonic()
    interrupted = False
    try:
        runner.start(args.users, args.spawn_rate)
        _until_done(args, runner, view, started, console)
        runner.stop()  # jobs under way finish (within the stop timeout)
    except KeyboardInterrupt:
        interrupted = True
    elapsed = time.monotonic() - started
    line = progress_line(elapsed, runner.user_count, view(), runner.stats.total.num_requests)
    console.print(line, highlight=False)
    two_sided = None
    if control is not None and config.marker_prefix is not None:
        jobs += session.ledger.take_jobs()  # a master's own ledger holds none
        two_sided = reconcile_run(
            control,
            config.marker_prefix,
            jobs,
            [session.key] if session.key else [],
            session.upstream_keys or (),
            view().get("halted"),
        )
        control.close()
    ledger = view()
    if two_sided is not None:
        mask_examples(ledger, two_sided["upstream_key_fingerprints"])
    summary = LoadSummary(
        base_url=config.base_url,
        auth_scheme=config.auth_scheme,
        models=list(config.endpoints),
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration=args.duration,
        elapsed=elapsed,
        workers=args.expect_workers if args.master else 0,
        ledger=ledger,
        steps=_steps(environment),
        requests=environment.stats.total.num_requests,
        interrupted=interrupted,
        two_sided=two_sided,
    )
    _write_locust_reports(args, environment, console)
    if args.csv and two_sided is not None:
        path = f"{args.csv}_two_sided.csv"
        write_checks_csv(two_sided, path)
        console.print(f"wrote {path}", highlight=False)
    runner.quit()
    print_summary(summary, console)
    if args.json is not None:
        import json

        args.json.write_text(json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {args.json}", highlight=False)
    return 0 if summary.ok else 1


def _config(args: argparse.Namespace, catalog: Catalog) -> LoadConfig:
    models = [
        model
        for model in catalog
        if not args.models or any(fnmatch.fnmatch(model.endpoint_id, p) for p in args.models)
    ]
    if not models:
        raise SetupError("no model matches --models")
    two_sided = bool(args.upstream_control)
    if two_sided:
        # The marker goes into the prompt: models without one cannot be followed upstream.
        models = [model for model in models if takes_prompt(model)]
        if not models:
            raise SetupError("--upstream-control needs models with a prompt (see --models)")
    endpoints = tuple(model.endpoint_id for model in models)
    return LoadConfig(
        base_url=args.base_url.rstrip("/"),
        endpoints=endpoints,
        auth_scheme=scheme_of(args),
        think_min=args.think_time[0],
        think_max=args.think_time[1],
        stream_share=args.stream_share,
        poll_interval=args.poll_interval,
        job_timeout=args.timeout,
        request_timeout=args.request_timeout,
        budget=args.max_requests,
        cancel_share=args.cancel_share,
        upstream_control=args.upstream_control.rstrip("/") if two_sided else None,
        marker_prefix=run_marker() if two_sided else None,
    )


def _watch(config: LoadConfig) -> ControlClient:
    """Reach the upstream mock and have it count this run's markers (before any submit)."""
    url, prefix = config.upstream_control, config.marker_prefix
    if url is None or prefix is None:
        raise SetupError("a two-sided run needs --upstream-control")
    control = ControlClient(url, config.request_timeout)
    problem = control.connect() or control.watch(prefix)
    if problem:
        control.close()
        raise SetupError(problem)
    return control


def _drive_workers(
    args: argparse.Namespace,
    config: LoadConfig,
    environment: Environment,
    console: Console,
    jobs: list[CustomerJob],
) -> LedgerView:
    """Wait for the workers, send each its config and budget share; the merged ledger.
    Two-sided job records the workers send are added to `jobs`."""
    runner = environment.runner
    assert isinstance(runner, locust.runners.MasterRunner)
    snapshots: dict[str, dict[str, Any]] = {}

    def on_report(client_id: str, data: dict[str, Any]) -> None:
        if REPORT_KEY in data:
            snapshots[client_id] = data[REPORT_KEY]
        jobs.extend(CustomerJob.from_json(job) for job in data.get(JOBS_KEY, ()))

    environment.events.worker_report.add_listener(on_report)
    console.print(
        f"master on {args.master_bind_host}:{args.master_port}:"
        f" waiting for {args.expect_workers} worker(s)",
        highlight=False,
    )
    deadline = time.monotonic() + args.expect_workers_timeout
    while len(runner.clients.ready) < args.expect_workers:
        if time.monotonic() > deadline:
            raise SetupError(
                f"{len(runner.clients.ready)} of {args.expect_workers} worker(s) connected"
                f" within {args.expect_workers_timeout:g} s"
            )
        gevent.sleep(_TICK)
    workers = list(runner.clients.ready)
    for worker, budget in zip(workers, split_budget(config.budget, len(workers)), strict=True):
        share = replace(config, budget=budget)
        runner.server.send_to_client(Message(SETUP_MESSAGE, share.to_json(), worker.id))
    ids = {worker.id for worker in workers}

    def view() -> dict[str, Any]:
        merged = merge([snapshots[i] for i in ids if i in snapshots])
        # Until every worker has reported, the budget is not known to be spent.
        merged["exhausted"] = merged["exhausted"] and ids <= snapshots.keys()
        return merged

    return view


def _work(
    args: argparse.Namespace, session: Session, environment: Environment, console: Console
) -> int:
    """A worker: run the users the master asks for with the config it sends."""
    locust.runners.WORKER_REPORT_INTERVAL = WORKER_REPORT_INTERVAL
    runner = environment.create_worker_runner(args.master_host, args.master_port)
    problems: list[str] = []

    def on_setup(environment: Environment, msg: Message, **kwargs: Any) -> None:
        try:
            session.configure(LoadConfig.from_json(msg.data))
        except SetupError as exc:
            problems.append(str(exc))
            logging.getLogger(__name__).error("this worker sends nothing: %s", exc)

    def on_report(client_id: str, data: dict[str, Any]) -> None:
        data[REPORT_KEY] = session.ledger.snapshot()
        data[JOBS_KEY] = [job.to_json() for job in session.ledger.take_jobs()]

    def on_stop(environment: Environment, **kwargs: Any) -> None:
        # The final counts, before the worker tells the master it has stopped.
        runner._send_stats()

    runner.register_message(SETUP_MESSAGE, on_setup)
    environment.events.report_to_master.add_listener(on_report)
    environment.events.test_stop.add_listener(on_stop)
    console.print(f"worker connected to {args.master_host}:{args.master_port}", highlight=False)
    runner.greenlet.join()
    return 2 if problems else 0


def _until_done(
    args: argparse.Namespace,
    runner: locust.runners.Runner,
    view: LedgerView,
    started: float,
    console: Console,
) -> None:
    """Until --duration has passed, or the budget is spent and its jobs are done."""
    next_line = started + args.progress_interval
    while True:
        gevent.sleep(_TICK)
        now = time.monotonic()
        ledger = view()
        if now >= next_line:
            next_line = now + args.progress_interval
            requests = runner.stats.total.num_requests
            console.print(
                progress_line(now - started, runner.user_count, ledger, requests), highlight=False
            )
        if now - started >= args.duration:
            return
        if (ledger["exhausted"] or ledger.get("halted")) and ledger["in_flight"] == 0:
            return


def _steps(environment: Environment) -> dict[str, StepStats]:
    """Locust's numbers for each step that ran (merged from the workers on a master)."""
    found = {}
    for name in (*STEPS, TIME_TO_COMPLETE):
        entry: StatsEntry | None = environment.stats.entries.get(
            (name, _STEP_METHODS.get(name, "GET"))
        )
        if entry is None or not entry.num_requests:
            continue
        found[name] = StepStats(
            requests=entry.num_requests,
            failures=entry.num_failures,
            average=entry.avg_response_time,
            maximum=entry.max_response_time,
            percentiles={p: float(entry.get_response_time_percentile(p)) for p in PERCENTILES},
        )
    return found


def _write_locust_reports(
    args: argparse.Namespace, environment: Environment, console: Console
) -> None:
    if args.html is not None:
        args.html.write_text(get_html_report(environment, show_download_link=False), "utf-8")
        console.print(f"wrote {args.html}", highlight=False)
    if args.csv:
        writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
        for suffix, write in (("stats", writer.requests_csv), ("failures", writer.failures_csv)):
            path = f"{args.csv}_{suffix}.csv"
            with open(path, "w", newline="", encoding="utf-8") as handle:
                write(csv.writer(handle))
            console.print(f"wrote {path}", highlight=False)
