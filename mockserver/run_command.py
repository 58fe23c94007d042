"""`mockserver run`: one request through the reference client, from the shell."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from mockserver.cli_auth import add_auth_options, key_from_env, scheme_of
from mockserver.cli_output import error, plain
from mockserver.client import (
    ClientSettings,
    FalClient,
    FalError,
    FalValidationError,
    InProgress,
    Queued,
    Status,
)


def add_parser(commands: Any) -> None:
    """Register the `run` command."""
    run = commands.add_parser(
        "run",
        help="submit one request with the reference client, follow it, print (and save) the result",
        description="Submit to ENDPOINT_ID, follow the request until it completes (polling, or"
        " the SSE stream with --stream), print the output and optionally download its media."
        " The key is read from an environment variable and never printed.",
    )
    run.add_argument("endpoint_id", metavar="ENDPOINT_ID", help="e.g. fal-ai/flux-1/schnell")
    source = run.add_mutually_exclusive_group()
    source.add_argument(
        "--input", metavar="JSON", default="{}", help="the model input as JSON (default: {})"
    )
    source.add_argument(
        "--input-file", metavar="FILE", type=Path, help="read the input JSON from FILE"
    )
    run.add_argument(
        "--base-url", default="http://127.0.0.1:8000", help="queue base URL (default: %(default)s)"
    )
    add_auth_options(run)
    run.add_argument(
        "--stream", action="store_true", help="follow the SSE status stream instead of polling"
    )
    run.add_argument("--logs", action="store_true", help="print the run's logs as they arrive")
    run.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="cancel and fail when not done in time"
    )
    run.add_argument(
        "--save", type=Path, metavar="DIR", help="download every media file of the result into DIR"
    )


def run(args: argparse.Namespace, console: Console, errors: Console) -> int:
    """Execute `mockserver run`; returns the exit code."""
    try:
        key = key_from_env(args.key_env)
    except ValueError as exc:
        error(errors, "run", str(exc))
        return 2
    try:
        text = args.input_file.read_text() if args.input_file else args.input
        arguments = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        error(errors, "run", f"the input is not readable JSON: {exc}")
        return 2
    if not isinstance(arguments, dict):
        error(errors, "run", "the input must be a JSON object")
        return 2
    settings = ClientSettings(base_url=args.base_url, key=key, auth_scheme=scheme_of(args))
    shown = 0

    last = ""

    def on_update(status: Status) -> None:
        nonlocal shown, last
        if isinstance(status, Queued):
            state = f"IN_QUEUE (position {status.position})"
        else:
            state = "IN_PROGRESS" if isinstance(status, InProgress) else "COMPLETED"
        if state != last:  # polling repeats itself; say only what changed
            plain(console, state, "dim")
            last = state
        if isinstance(status, Queued):
            return
        logs = status.logs or []
        # a polled status carries every log so far, a streamed one only new lines
        fresh = logs if args.stream else logs[shown:]
        shown = 0 if args.stream else len(logs)
        for entry in fresh:
            level, message = entry.get("level", ""), entry.get("message", "")
            console.print(Text.assemble("  ", (str(level), "cyan"), f" {message}"))

    try:
        with FalClient(settings) as client:
            output = client.subscribe(
                args.endpoint_id,
                arguments,
                with_logs=args.logs,
                on_update=on_update,
                mode="streaming" if args.stream else "polling",
                timeout=args.timeout,
            )
            console.print_json(data=output)
            if args.save:
                for path in _save(client, output, args.save, console):
                    plain(console, f"saved {path}")
    except FalValidationError as exc:
        error(errors, "run", _refusal(exc))
        for entry in exc.errors:
            where = ".".join(str(p) for p in entry.get("loc", []))
            kind = f" [{entry['type']}]" if entry.get("type") else ""
            plain(errors, f"  {where}: {entry.get('msg')}{kind}")
        return 1
    except FalError as exc:
        error(errors, "run", str(exc))
        return 1
    return 0


def _refusal(exc: FalValidationError) -> str:
    """What a 422 means: fal uses it for invalid inputs and for inputs a model refuses
    (a content policy), told apart by each problem's `type`."""
    fields = ", ".join(exc.fields) or exc.message
    kinds = {str(entry.get("type", "")) for entry in exc.errors}
    if kinds and all(kind.startswith("content_policy") for kind in kinds):
        return f"the model refused the input: content policy ({fields})"
    return f"invalid input ({fields})"


def _save(
    client: FalClient, output: dict[str, Any], directory: Path, console: Console
) -> list[Path]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def update(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done)

        return client.save(output, directory, progress=update)
