"""The `mockserver` command line."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from mockserver import contracts_command, run_command, serving
from mockserver.catalog import ContractError, contract_files, load_contract
from mockserver.check import command as check_command
from mockserver.check.scenarios import ScenarioError
from mockserver.cli_output import error, plain, warning
from mockserver.clock import Clock, ManualClock, RealClock
from mockserver.contracts import load_data_file
from mockserver.exposure import CONTROL_TOKEN_ENV, decide, is_loopback, proxy_adds_key
from mockserver.load import command as load_command
from mockserver.mock import FalMock, MockConfig
from mockserver.profiles import PROFILES, get_profile
from mockserver.queue import Retention
from mockserver.recording import command as record_command
from mockserver.store import MemoryStore, Store, StoreError
from mockserver.webhooks import DEFAULT_ALLOW, WebhookConfig

EPILOG = """\
examples:
  mockserver serve                                  # official fal behaviour on 127.0.0.1:8000
  mockserver serve --profile intermediary           # Bearer auth, queue.fal.run URLs to rewrite
  mockserver serve --instant --clock manual         # for tests that drive time via /_mock/clock
  FAL_MOCK_KEYS=k1,k2 mockserver serve --keys-env FAL_MOCK_KEYS
  mockserver contracts validate ./my-contracts
  mockserver contracts import fal-openapi.json --out my-contracts
  mockserver contracts show fal-ai/flux/dev
  FAL_KEY=k mockserver run fal-ai/flux-1/schnell --input '{"prompt": "a fox"}' --save out/
  FAL_KEY=k mockserver check --base-url https://proxy.example --auth-scheme bearer --dry-run
  mockserver record --upstream https://proxy.example --out my-contracts
  FAL_KEY=k mockserver load --base-url http://127.0.0.1:8000 --users 50 --duration 30s
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="mockserver",
        description="A mock of the fal.ai queue protocol, served from recorded contracts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the mock server",
        description="Run the mock fal queue on HOST:PORT. The control API is under /_mock/,"
        " the OpenAPI document at /openapi.json, media under /files/, and synchronous"
        " runs (fal.run) under /_run/<endpoint id> or with 'Host: fal.run'.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s); any other than loopback needs"
        " --control-token or --allow-remote-control",
    )
    serve.add_argument(
        "--control-token",
        metavar="TOKEN",
        default=os.environ.get(CONTROL_TOKEN_ENV) or None,
        help="require 'Authorization: Bearer TOKEN' on every /_mock/* request"
        f" (default: ${CONTROL_TOKEN_ENV}, else none)",
    )
    serve.add_argument(
        "--allow-remote-control",
        action="store_true",
        help="bind a non-loopback --host with an open control API (no token): anyone who"
        " reaches the port can reset the mock, move its clock and script failures",
    )
    serve.add_argument(
        "--proxy-adds-key",
        action="store_true",
        help="on a non-loopback --host, let the proxy route (/api/fal/proxy) add the first"
        " key to requests without Authorization, as an app's own server would (on loopback"
        " it always does): anyone who reaches the port then acts with that key",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8000,
        metavar="PORT",
        help="port (default: %(default)s; 0: any free port, shown in the first line printed)",
    )
    serve.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="official: 'Key' auth and URLs on this server; intermediary: 'Bearer' auth and"
        " request URLs on https://queue.fal.run (default: what --contracts recordings"
        " observed, else official)",
    )
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="base of the URLs the server returns (default: each request's own origin,"
        " honouring X-Forwarded-Proto/Host)",
    )
    serve.add_argument(
        "--contracts",
        metavar="DIR",
        action="append",
        type=Path,
        default=[],
        help="extra contracts directory (repeatable); its models are added to, or replace,"
        " the shipped ones",
    )
    serve.add_argument(
        "--no-builtin-contracts",
        action="store_true",
        help="serve only the models of the --contracts directories",
    )
    serve.add_argument(
        "--keys-env",
        metavar="NAME",
        help="accept only the comma-separated keys in this environment variable"
        " (default: any non-empty key)",
    )
    serve.add_argument(
        "--runners", type=int, default=2, metavar="N", help="runners per app (default: %(default)s)"
    )
    serve.add_argument(
        "--queue-seconds",
        type=float,
        metavar="SECONDS",
        help="time each job waits in the queue (default: per model)",
    )
    serve.add_argument(
        "--run-seconds",
        type=float,
        metavar="SECONDS",
        help="time each job runs (default: per model)",
    )
    serve.add_argument(
        "--unknown-endpoints",
        choices=["404", "generic"],
        default="404",
        help="endpoints not in the catalog: 404 like fal (default), or a generic image answer",
    )
    serve.add_argument("--instant", action="store_true", help="zero queue and run time")
    serve.add_argument(
        "--store",
        metavar="URL",
        help="keep the queue in Redis (redis://HOST:PORT/DB), shared by every replica started"
        " with the same URL; default: in this process's memory",
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        default=1,
        help="serve with N processes (needs --store: they share the queue there)",
    )
    serve.add_argument(
        "--clock",
        choices=["real", "manual"],
        default="real",
        help="real: wall time; manual: time moves only by POST /_mock/clock/advance"
        " (default: %(default)s)",
    )
    serve.add_argument(
        "--result-ttl",
        type=float,
        metavar="SECONDS",
        default=3600.0,
        help="seconds results are kept (default: %(default)s)",
    )
    serve.add_argument(
        "--large-result-ttl",
        type=float,
        metavar="SECONDS",
        default=360.0,
        help="seconds large results are kept (default: %(default)s)",
    )
    serve.add_argument(
        "--large-result-bytes",
        type=int,
        metavar="BYTES",
        default=10 * 1024,
        help="size from which a result is large (default: %(default)s)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        metavar="BYTES",
        default=10 * 1024 * 1024,
        help="largest request body accepted; larger gets 413 (default: %(default)s)",
    )
    serve.add_argument(
        "--seed", type=int, metavar="N", help="seed for random model seeds (reproducible runs)"
    )
    serve.add_argument(
        "--webhook-allow",
        action="append",
        metavar="HOST_OR_NETWORK",
        help="where webhooks may be delivered (repeatable: a host name as written, an IP"
        " or a CIDR network; default: loopback only: 127.0.0.0/8, ::1, localhost)",
    )
    serve.add_argument(
        "--webhook-retries",
        type=int,
        default=10,
        metavar="N",
        help="retries after a failed webhook delivery (default: %(default)s)",
    )
    serve.add_argument(
        "--webhook-backoff",
        type=float,
        default=7.0,
        metavar="SECONDS",
        help="wait before the first retry, doubling each time (default: %(default)s:"
        " 10 retries span about 2 hours, as fal's)",
    )
    serve.add_argument("--ssl-certfile", metavar="FILE", help="serve HTTPS with this certificate")
    serve.add_argument("--ssl-keyfile", metavar="FILE", help="private key for --ssl-certfile")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default: %(default)s)",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="print uvicorn's line per request (off by default: it costs a large share of"
        " the throughput; GET /_mock/requests lists the requests either way)",
    )

    run_command.add_parser(commands)
    check_command.add_parser(commands)
    record_command.add_parser(commands)
    load_command.add_parser(commands)

    contracts = commands.add_parser(
        "contracts", help="import fal's OpenAPI documents, inspect contract directories"
    )
    contracts_commands = contracts.add_subparsers(dest="contracts_command", required=True)
    validate = contracts_commands.add_parser(
        "validate", help="check every contract file in DIR and report problems by file"
    )
    validate.add_argument("directories", nargs="+", type=Path, metavar="DIR")
    contracts_command.add_parsers(contracts_commands)
    return parser


def recorded_profile(directories: Sequence[Path]) -> str | None:
    """The profile recordings in `directories` agree on (`mockserver record` notes the
    auth scheme and URL style it saw), or None when there are none or they disagree."""
    seen = set()
    for directory in directories:
        for path in contract_files(directory):
            try:
                traits = load_data_file(path).get("recorded") or {}
            except (ValueError, AttributeError):
                continue  # a malformed file is reported when the catalog loads it
            if traits.get("auth_scheme") == "Bearer" or traits.get("url_style") == "queue.fal.run":
                seen.add("intermediary")
            elif traits.get("auth_scheme") == "Key":
                seen.add("official")
    return seen.pop() if len(seen) == 1 else None


def config_from_args(args: argparse.Namespace) -> MockConfig:
    """A `MockConfig` from parsed `serve` arguments; ValueError for bad combinations."""
    keys = None
    if args.keys_env:
        raw = os.environ.get(args.keys_env, "")
        keys = frozenset(k.strip() for k in raw.split(",") if k.strip())
        if not keys:
            raise ValueError(f"--keys-env {args.keys_env}: the variable is unset or empty")
    if args.runners < 1:
        raise ValueError("--runners must be at least 1")
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    if args.workers > 1 and not args.store:
        raise ValueError(
            f"--workers {args.workers} starts processes that share nothing in memory: each"
            " would answer 404 for the others' jobs; add --store redis://HOST:PORT/DB"
        )
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise ValueError("--ssl-certfile and --ssl-keyfile go together")
    for name in ("queue_seconds", "run_seconds", "result_ttl", "large_result_ttl"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ValueError(f"--{name.replace('_', '-')} must not be negative")
    control = decide(args.host, args.control_token, args.allow_remote_control)
    return MockConfig(
        profile=get_profile(args.profile or recorded_profile(args.contracts) or "official"),
        control=control,
        keys=keys,
        public_url=args.public_url,
        contracts=tuple(args.contracts),
        builtin_contracts=not args.no_builtin_contracts,
        runners=args.runners,
        queue_seconds=args.queue_seconds,
        run_seconds=args.run_seconds,
        instant=args.instant,
        retention=Retention(args.result_ttl, args.large_result_ttl, args.large_result_bytes),
        max_body_bytes=args.max_body_bytes,
        seed=args.seed,
        webhooks=WebhookConfig(
            retries=args.webhook_retries,
            backoff=args.webhook_backoff,
            allow=tuple(args.webhook_allow) if args.webhook_allow else DEFAULT_ALLOW,
        ),
        unknown_endpoints=args.unknown_endpoints,
        proxy_adds_key=proxy_adds_key(args.host, args.proxy_adds_key),
    )


def _profile_reason(args: argparse.Namespace) -> str:
    """Why the server runs the profile it does (said in the banner)."""
    if args.profile:
        return "chosen with --profile"
    if recorded_profile(args.contracts):
        return "what the recordings in --contracts observed, --profile to change"
    return "the default, --profile to change"


def _proxy_text(args: argparse.Namespace, config: MockConfig) -> str:
    """What the banner says of the proxy route's key, when it is not plain loopback."""
    if is_loopback(args.host):
        return ""
    if config.proxy_adds_key:
        return (
            "\n  proxy route ADDS A KEY to keyless requests (--proxy-adds-key): anyone who"
            " reaches this port acts with it"
        )
    return "\n  proxy route adds no key here (not loopback): keyless requests get 401"


def _models_text(args: argparse.Namespace, total: int) -> str:
    """`N models`, and how many each --contracts directory brought."""
    if not args.contracts:
        return f"{total} models"
    parts = [f"{len(contract_files(d))} from {d}" for d in args.contracts]
    if not args.no_builtin_contracts:
        parts.append("the rest shipped")
    return f"{total} models ({', '.join(parts)})"


def _serve(args: argparse.Namespace, console: Console, errors: Console) -> int:
    from mockserver.app import create_app

    config = config_from_args(args)
    store = _store_from_args(args, config)
    clock: Clock = store.clock or (ManualClock() if args.clock == "manual" else RealClock())
    mock = FalMock(config, clock=clock, store=store)
    for directory in args.contracts:
        if not contract_files(directory):
            warning(errors, "serve", f"{directory} holds no contract files (*.yaml, *.json)")
    if not len(mock.catalog):
        warning(errors, "serve", "serving 0 models: every submit will answer 404")
    app = create_app(mock)
    # Bound (and listening) before the banner, so the banner names the real port
    # (--port 0: the kernel picks one; nothing can take it in between), whoever
    # reads it can connect at once, and a busy port is one line, not a banner
    # followed by uvicorn's error.
    sock = serving.bind(args.host, args.port)
    scheme = "https" if args.ssl_certfile else "http"
    base = config.public_url or f"{scheme}://{args.host}:{sock.getsockname()[1]}"

    def announce() -> None:
        profile = config.profile
        console.print(
            Text.assemble(
                ("fal mock", "bold"),
                f" on {base} ({profile.name} profile: {_profile_reason(args)};"
                f" 'Authorization: {profile.auth_scheme} <key>')\n"
                f"  {_models_text(args, len(mock.catalog))} · {args.clock} clock"
                f"{_replicas_text(args)}"
                f" · control API {base}/_mock/ · OpenAPI {base}/openapi.json\n"
                f"  {config.control.describe()}{_proxy_text(args, config)}",
            )
        )
        console.file.flush()  # whoever started us may be waiting for that line

    # Everything loaded so far (catalog, schemas, libraries) lives as long as the
    # process: keep it out of the garbage collector's full scans.
    gc.collect()
    gc.freeze()
    if args.workers > 1:
        # Each worker process builds its own replica from the same arguments.
        os.environ[_WORKER_ARGV] = json.dumps(args.argv)
        store.close()
    serving.run(
        f"{__name__}:worker_app" if args.workers > 1 else app,
        sock,
        announce=announce,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
    )
    return 0


_WORKER_ARGV = "MOCKSERVER_SERVE_ARGV"


def _replicas_text(args: argparse.Namespace) -> str:
    """` · queue in redis://host:port/0 · 3 workers` (password never shown)."""
    if not args.store:
        return ""
    from mockserver.redis_store import redact_store_url

    workers = f" · {args.workers} workers" if args.workers > 1 else ""
    return f" · queue in {redact_store_url(args.store)}{workers}"


def _store_from_args(args: argparse.Namespace, config: MockConfig) -> Store:
    """The store `--store` names (`StoreError` when it cannot be used)."""
    if not args.store:
        return MemoryStore()
    from mockserver.redis_store import RedisStore

    return RedisStore(
        args.store,
        manual_clock=args.clock == "manual",
        request_log_size=config.request_log_size,
    )


def worker_app() -> Any:
    """The app of one `serve --workers N` process: a replica built from the same
    arguments as its parent (uvicorn calls this in each worker)."""
    from mockserver.app import create_app

    args = build_parser().parse_args(json.loads(os.environ[_WORKER_ARGV]))
    config = config_from_args(args)
    store = _store_from_args(args, config)
    return create_app(FalMock(config, clock=store.clock, store=store))


def _validate(directories: Sequence[Path], console: Console) -> int:
    problems = 0
    checked = 0
    bad_files = 0
    for directory in directories:
        try:
            files = contract_files(directory)
        except ContractError as exc:
            console.print(Text.assemble(("✗ ", "red"), str(exc)))
            problems += 1
            continue
        if not files:
            message = f"{directory}: no contract files (*.yaml, *.json) here or under models/"
            console.print(Text.assemble(("✗ ", "red"), message))
            problems += 1
        for path in files:
            checked += 1
            try:
                model = load_contract(path)
            except ContractError as exc:
                problems += len(exc.problems)
                bad_files += 1
                for problem in exc.problems:
                    console.print(Text.assemble(("✗ ", "red"), problem))
            else:
                console.print(Text.assemble(("✓ ", "green"), f"{path}: {model.endpoint_id}"))
    plain(
        console,
        f"{checked} contract file(s) checked: {problems} problem(s)"
        f" ({bad_files} file(s) with problems)",
    )
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mockserver` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    # soft_wrap: never break a file path in two when the output is not a terminal
    console = Console(soft_wrap=True)
    errors = Console(stderr=True, soft_wrap=True)
    try:
        if args.command == "serve":
            return _serve(args, console, errors)
        if args.command == "run":
            return run_command.run(args, console, errors)
        if args.command == "check":
            return check_command.run(args, console, errors)
        if args.command == "record":
            return record_command.run(args, console, errors)
        if args.command == "load":
            # Locust (gevent) cannot share this interpreter: the load runs in a fresh one.
            return load_command.run(args, argv, errors)
        if args.contracts_command == "validate":
            return _validate(args.directories, console)
        return contracts_command.run(args, console, errors)
    except (serving.CannotListen, StoreError) as exc:
        error(errors, _command_name(args), str(exc))
        return 1
    except (ContractError, ScenarioError, ValueError) as exc:
        error(errors, _command_name(args), str(exc))
        return 2


def _command_name(args: argparse.Namespace) -> str:
    """`serve`, `check`, `contracts validate`...: what error messages start with."""
    sub = getattr(args, "contracts_command", None)
    return f"{args.command} {sub}" if args.command == "contracts" and sub else args.command


if __name__ == "__main__":
    sys.exit(main())
