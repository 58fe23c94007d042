"""`mockserver` commands run in the test's process.

`main([...])` is the command as the shell runs it (argument parsing, the run,
what it prints, the exit code), without starting and importing a new Python
process for each run. Tests that need a process (a signal, a server that must
outlive the call) start one instead.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
from collections.abc import Mapping

import pytest

from mockserver.cli import main


def run_command(
    *argv: str, env: Mapping[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """`mockserver ARGV` with `env` applied to the environment while it runs (a
    value of None removes the variable): its exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        for name, value in (env or {}).items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        try:
            code = main(list(argv))
        except SystemExit as exit:  # argparse refusing the arguments
            code = exit.code if isinstance(exit.code, int) else 2
    return subprocess.CompletedProcess(list(argv), code, out.getvalue(), err.getvalue())
