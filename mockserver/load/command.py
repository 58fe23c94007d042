"""`mockserver load`: its options and its start (Locust runs in a process of its own).

Locust patches the standard library with gevent when it is imported, which must
happen before `ssl` is imported (`mockserver` imports it through httpx). So this
module never imports Locust: `run` replaces the process with a fresh interpreter
that imports Locust first and then `mockserver.load.engine`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console

from mockserver.cli_auth import add_auth_options
from mockserver.load.config import parse_duration

DEFAULT_MAX_REQUESTS = 1000
DEFAULT_MASTER_PORT = 5557

EPILOG = """\
exit codes: 0 nothing failed and nothing was lost, 1 otherwise, 2 bad usage.

examples:
  mockserver serve --instant &
  FAL_KEY=k mockserver load --base-url http://127.0.0.1:8000 --users 50 --duration 30s
  MY_KEY=k mockserver load --base-url https://proxy.example --auth-scheme bearer \\
      --key-env MY_KEY --models 'fal-ai/flux-1/*' --max-requests 500 --json load.json

two-sided: the intermediary at :8001 uses the mock at :8000 as its fal upstream
(official profile); every job is followed to the upstream by a marker in its prompt:
  mockserver serve --instant &
  MY_KEY=k mockserver load --base-url http://127.0.0.1:8001 --auth-scheme bearer \\
      --key-env MY_KEY --upstream-control http://127.0.0.1:8000/_mock \\
      --models fal-ai/flux-1/schnell --cancel-share 0.2 --max-requests 100 --duration 30s

distributed (Locust's master and workers; the master sends the settings, each
worker reads the key from its own environment):
  FAL_KEY=k mockserver load --base-url URL --master --expect-workers 2 --users 400
  FAL_KEY=k mockserver load --worker --master-host 127.0.0.1   # on each worker machine
"""

# The interpreter that runs a load: Locust (and with it gevent's patching) first.
_BOOTSTRAP = (
    "import sys, locust; from mockserver.load.engine import main; sys.exit(main(sys.argv[1:]))"
)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _think_time(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    try:
        pair = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes SECONDS or MIN-MAX, got {text!r}") from None
    if pair[0] < 0 or pair[1] < pair[0]:
        raise argparse.ArgumentTypeError(f"takes 0 <= MIN <= MAX, got {text!r}")
    return pair


def add_parser(commands: Any) -> None:
    """Register the `load` command."""
    load = commands.add_parser(
        "load",
        help="load-test a queue server with Locust users; count failures and lost jobs",
        description="Simulated users (Locust) run the fal queue flow against --base-url: submit,"
        " poll or stream the status, fetch the result, download its media, think, repeat."
        " Every answer is judged with `mockserver check`'s protocol checks, and every job's"
        " fate is counted: a job is lost when it never completes within --timeout, when its"
        " result is missing, belongs to another request, or when its media do not download."
        " Needs the 'load' extra (pip install 'fal-queue-harness[load]').",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("--base-url", metavar="URL", help="the server's queue base (not on workers)")
    add_auth_options(load)
    load.add_argument(
        "--models",
        action="append",
        metavar="GLOB",
        help="the model mix: endpoints whose id matches, each picked with equal chance"
        " (repeatable; default: every model of the contracts)",
    )
    load.add_argument(
        "--contracts",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="extra contracts directory for inputs and output schemas (repeatable)",
    )
    load.add_argument(
        "--users", type=int, default=10, metavar="N", help="simulated users (default: %(default)s)"
    )
    load.add_argument(
        "--spawn-rate",
        type=float,
        default=10.0,
        metavar="PER_SECOND",
        help="users started per second (default: %(default)s)",
    )
    load.add_argument(
        "--duration",
        type=_duration,
        default=60.0,
        metavar="TIME",
        help="how long users start jobs: seconds, or 30s, 5m, 1h30m (default: 60); jobs"
        " under way then finish, within --timeout",
    )
    load.add_argument(
        "--max-requests",
        type=int,
        default=DEFAULT_MAX_REQUESTS,
        metavar="N",
        help="spending guard: at most N billable submits in all (split over the workers);"
        " the run ends when they are spent and their jobs are done (default: %(default)s)",
    )
    load.add_argument(
        "--think-time",
        type=_think_time,
        default=(0.5, 2.0),
        metavar="MIN-MAX",
        help="seconds each user waits between jobs, at random in MIN-MAX (default: 0.5-2)",
    )
    load.add_argument(
        "--stream-share",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="share of jobs that wait on the status stream instead of polling (default:"
        " %(default)s)",
    )
    load.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="between status polls (default: %(default)s)",
    )
    load.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="per job: not COMPLETED in time is a lost job (default: %(default)s)",
    )
    load.add_argument(
        "--request-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="per HTTP request (default: %(default)s)",
    )
    load.add_argument(
        "--cancel-share",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of jobs cancelled right after their submit, exactly (default: 0)",
    )
    load.add_argument(
        "--upstream-control",
        metavar="URL",
        help="two-sided mode: the server under load uses a mock (mockserver serve, official"
        " profile) as its fal upstream, and this is that mock's control API (BASE/_mock)."
        " Each job's prompt holds a marker of its own; after the run the mock's counts per"
        " marker are reconciled with what the customers saw: each accepted job submitted"
        " upstream exactly once (a refused one never), its input forwarded field by field,"
        " on the intermediary's key, cancels reaching the upstream, the upstream key in no"
        " answer, no result holding another job's input. Failures fail the run (exit 1)."
        " Only models with a prompt are used; the run halts when an accepted job does not"
        " reach the mock (its upstream may be a real, billing one)",
    )
    load.add_argument("--json", type=Path, metavar="FILE", help="write the summary as JSON")
    load.add_argument("--html", type=Path, metavar="FILE", help="write Locust's HTML report")
    load.add_argument(
        "--csv",
        metavar="PREFIX",
        help="write Locust's statistics as PREFIX_stats.csv and PREFIX_failures.csv (and"
        " with --upstream-control the two-sided checks as PREFIX_two_sided.csv)",
    )
    load.add_argument(
        "--progress-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between progress lines (default: %(default)s)",
    )
    distributed = load.add_argument_group("distributed (Locust's master and workers)")
    distributed.add_argument(
        "--master", action="store_true", help="run no users here: drive --expect-workers workers"
    )
    distributed.add_argument(
        "--expect-workers",
        type=int,
        default=1,
        metavar="N",
        help="with --master: start when N workers are connected (default: %(default)s)",
    )
    distributed.add_argument(
        "--expect-workers-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --master: give up when they are not all there in time (default: %(default)s)",
    )
    distributed.add_argument(
        "--master-bind-host",
        default="127.0.0.1",
        metavar="HOST",
        help="with --master: the address workers connect to (default: %(default)s;"
        " 0.0.0.0 for workers on other machines)",
    )
    distributed.add_argument(
        "--master-port",
        type=int,
        default=DEFAULT_MASTER_PORT,
        metavar="PORT",
        help="the master's port (default: %(default)s)",
    )
    distributed.add_argument(
        "--worker", action="store_true", help="run users for the master at --master-host"
    )
    distributed.add_argument("--master-host", metavar="HOST", help="with --worker: the master")


def standalone_parser() -> argparse.ArgumentParser:
    """`mockserver` with only the `load` command: the load interpreter parses the same
    arguments without importing every other command."""
    parser = argparse.ArgumentParser(prog="mockserver")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, or None."""
    if args.master and args.worker:
        return "--master and --worker exclude each other"
    if args.worker:
        return None if args.master_host else "--worker needs --master-host"
    if not args.base_url:
        return "--base-url is required (except on a --worker)"
    parts = urlsplit(args.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"--base-url must be an http(s) URL, got {args.base_url!r}"
    for name in ("timeout", "request_timeout", "poll_interval", "spawn_rate", "progress_interval"):
        if getattr(args, name) <= 0:
            return f"--{name.replace('_', '-')} must be positive"
    if args.users < 1 or args.expect_workers < 1:
        return "--users and --expect-workers must be at least 1"
    if args.max_requests < 0:
        return "--max-requests must not be negative"
    if not 0 <= args.stream_share <= 1:
        return "--stream-share is a share between 0 and 1"
    if not 0 <= args.cancel_share <= 1:
        return "--cancel-share is a share between 0 and 1"
    if args.upstream_control:
        control = urlsplit(args.upstream_control)
        if control.scheme not in ("http", "https") or not control.netloc:
            return f"--upstream-control must be an http(s) URL, got {args.upstream_control!r}"
    return None


def run(args: argparse.Namespace, argv: Sequence[str], errors: Console) -> int:
    """Check the options, then run the load in a fresh interpreter; its exit code."""
    problem = usage_problem(args)
    if problem:
        errors.print(f"mockserver load: error: {problem}", markup=False, highlight=False)
        return 2
    if importlib.util.find_spec("locust") is None:  # asked without importing (patching) it
        errors.print(
            "mockserver load: error: needs Locust: pip install 'fal-queue-harness[load]'",
            markup=False,
        )
        return 2
    command = [sys.executable, "-c", _BOOTSTRAP, *argv]
    if os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, command)
    return subprocess.call(command)
