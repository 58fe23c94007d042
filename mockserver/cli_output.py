"""How every subcommand prints: data never read as rich markup, one error style.

Titles, log lines, file paths and error messages come from contracts, servers
and users; `[dev]` in `FLUX.1 [dev]` is text, not a style tag. Errors read
`mockserver COMMAND: error: MESSAGE`, the style argparse uses for usage errors.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def error(errors: Console, command: str, message: str) -> None:
    """`mockserver COMMAND: error: MESSAGE` on the error console, printed as is."""
    errors.print(Text(f"mockserver {command}: error: {message}"))


def warning(errors: Console, command: str, message: str) -> None:
    """`mockserver COMMAND: warning: MESSAGE` on the error console, printed as is."""
    errors.print(Text(f"mockserver {command}: warning: {message}", style="yellow"))


def plain(console: Console, text: str, style: str = "") -> None:
    """`text` exactly as given (no markup, no highlighting)."""
    console.print(Text(text, style=style))


def cells(*values: str) -> list[Text]:
    """Table cells shown exactly as given."""
    return [Text(value) for value in values]
