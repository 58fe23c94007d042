"""Command-line options shared by the commands that call a server with a key."""

from __future__ import annotations

import argparse
import os

from mockserver.client.protocol import AuthScheme


def add_auth_options(parser: argparse.ArgumentParser) -> None:
    """`--auth-scheme key|bearer` and `--key-env NAME` (the key itself is never an argument:
    command lines end up in shell history and process listings)."""
    parser.add_argument(
        "--auth-scheme",
        choices=["key", "bearer"],
        default="key",
        help="Authorization scheme the server takes: key (fal) or bearer (default: key)",
    )
    parser.add_argument(
        "--key-env",
        default="FAL_KEY",
        metavar="NAME",
        help="environment variable holding the key (default: FAL_KEY)",
    )


def scheme_of(args: argparse.Namespace) -> AuthScheme:
    """The Authorization scheme chosen with `--auth-scheme`."""
    return "Bearer" if args.auth_scheme == "bearer" else "Key"


def key_from_env(name: str) -> str:
    """The key in environment variable `name`; ValueError (without any key) when unset."""
    key = os.environ.get(name, "")
    if not key:
        raise ValueError(f"set the key in ${name} (or name another variable with --key-env)")
    return key
