"""`mockserver record`: run the recording proxy in front of an upstream."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.text import Text

from mockserver import serving
from mockserver.cli_output import plain, warning
from mockserver.exposure import ExposureRefused, is_loopback
from mockserver.recording.proxy import Recorder, create_recorder_app
from mockserver.recording.store import RecordingStore
from mockserver.redact import Redactor

EPILOG = """\
examples:
  mockserver record --upstream https://proxy.example --out my-contracts
  FAL_KEY=k mockserver run fal-ai/flux-1/schnell --base-url http://127.0.0.1:8001 \\
      --auth-scheme bearer --input '{"prompt": "a fox"}'
  mockserver serve --contracts my-contracts --profile intermediary
"""


def add_parser(commands: Any) -> None:
    """Register the `record` command."""
    record = commands.add_parser(
        "record",
        help="record an upstream's answers into a contracts directory (a reverse proxy)",
        description="Listen on HOST:PORT and forward every request to --upstream. Point your"
        " client at this proxy as if it were the upstream: each request that completes is"
        " written to --out in the contracts format (input, output, media files, timing,"
        " auth scheme, URL style, status codes), scrubbed of keys, tokens and cookies, merged"
        " with what is already there. Failed or cancelled requests are passed through and not"
        " recorded. Replay with `mockserver serve --contracts DIR`.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("--upstream", required=True, metavar="URL", help="the service to record")
    record.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="contracts directory to write"
    )
    record.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s); any other than loopback needs --allow-remote",
    )
    record.add_argument(
        "--allow-remote",
        action="store_true",
        help="bind a non-loopback --host: anyone who reaches this port can send requests"
        " through the recorder to --upstream, and what they get back is written into --out",
    )
    record.add_argument("--port", type=int, default=8001, help="port (default: %(default)s)")
    record.add_argument(
        "--auth-scheme",
        choices=["key", "bearer"],
        help="the scheme the upstream takes: clients' Authorization headers are sent on with it"
        " (so fal-client, which says 'Key', can record an intermediary that wants 'Bearer');"
        " default: as the client sent it",
    )
    record.add_argument(
        "--public-url",
        metavar="URL",
        help="this proxy's URL as clients reach it (default: each request's own origin)",
    )
    record.add_argument(
        "--key-env",
        metavar="NAME",
        help="variable holding the upstream key: scrubbed even before a client sends it"
        " (keys in Authorization and secret-named headers, query parameters and body fields"
        " are learnt and scrubbed anyway)",
    )
    record.add_argument(
        "--scrub-field",
        action="append",
        default=[],
        metavar="NAME",
        help="also mask this field (any depth) and query parameter (repeatable)",
    )
    record.add_argument(
        "--scrub-pattern",
        action="append",
        default=[],
        metavar="REGEX",
        help="also mask every match of this regular expression (repeatable)",
    )
    record.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="upstream answer timeout; past it the client gets 504 (default: %(default)s)",
    )
    record.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default: %(default)s)",
    )


def run(args: argparse.Namespace, console: Console, errors: Console) -> int:
    """Execute `mockserver record`; returns the exit code."""
    parts = urlsplit(args.upstream)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--upstream must be an http(s) URL, got {args.upstream!r}")
    if args.timeout <= 0:
        raise ValueError("--timeout must be positive")
    if not args.allow_remote and not is_loopback(args.host):
        raise ExposureRefused(
            f"--host {args.host} lets anyone who reaches this port send requests through the"
            f" recorder to {urlsplit(args.upstream).netloc} and write what comes back into"
            f" {args.out}. Bind 127.0.0.1, or pass --allow-remote if that is what you want."
        )
    redactor = Redactor.build(args.scrub_field, args.scrub_pattern)
    if args.key_env:
        key = os.environ.get(args.key_env, "")
        if not key:
            raise ValueError(f"--key-env {args.key_env}: the variable is unset or empty")
        redactor.learn(key)
    sock = serving.bind(args.host, args.port)  # before anything is written
    args.out.mkdir(parents=True, exist_ok=True)
    store = RecordingStore(args.out, redactor, args.upstream)
    scheme = {"key": "Key", "bearer": "Bearer"}.get(args.auth_scheme or "")
    recorder = Recorder(
        args.upstream, store, public_url=args.public_url, timeout=args.timeout, auth_scheme=scheme
    )
    if store.cleaned:
        console.print(
            f"removed {len(store.cleaned)} leftover(s) of an interrupted recording from {args.out}"
            " (scratch files, temporary contracts, unreferenced media)",
            highlight=False,
        )
    base = args.public_url or f"http://{args.host}:{args.port}"

    def announce() -> None:
        console.print(
            Text.assemble(
                ("recording", "bold"),
                f" {redactor.url(args.upstream)} into {args.out}\n"
                f"  point clients at {base} · progress at {base}/_record/status"
                " · Ctrl-C (or kill) to stop",
            )
        )
        console.file.flush()  # shown at once even when stdout is a file or a pipe

    serving.run(create_recorder_app(recorder), sock, announce=announce, log_level=args.log_level)
    written = sorted({str(p) for p in store.written})
    plain(console, f"{len(written)} contract file(s) written: {', '.join(written) or 'none'}")
    for problem in recorder.state.errors:
        warning(errors, "record", f"not recorded: {problem}")
    return 0
