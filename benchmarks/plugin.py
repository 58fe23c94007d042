"""`make bench`, the pytest plugin: what `fal_mock` costs a user's test suite.

Side by side, in fresh pytest processes, runs interleaved (A B C, A B C ...)
so that a busy machine slows every variant alike; the median of each is kept:

1. A generated suite of 100 tests, each a `fal_client.subscribe(...)`:
   under `fal_mock`, against a hand-written respx mock answering canned JSON,
   and an empty suite of 100 tests (pytest's own cost). Per-test cost is a
   suite's time less the empty suite's, divided by 100.
2. pytest start-up (one trivial test) with the plugin loaded and with it
   disabled (``-p no:fal_queue_harness``): what having the package installed
   costs a run that does not use it.
3. The fixture's own setup and teardown (what `fal_mock` does before and after
   a test), timed in this process after a warm-up.

The pytest processes run with bytecode cached (in a directory of their own,
filled by one untimed run of each suite first), as a developer's repeated
runs are: pytest rewrites the asserts of every module of a plugin's package,
and without a cache it parses and compiles them again in every run. The
suites are also run without any bytecode cache (``PYTHONDONTWRITEBYTECODE=1``,
as some CI images set it), where that one-time cost lands on the first test.
"""

from __future__ import annotations

import functools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

TESTS = 100
PLUGIN_HEADING = "## The pytest plugin, as a dependency"
DEV = "fal-ai/flux-1/dev"

_FAL_MOCK_SUITE = f'''
import fal_client
import pytest

@pytest.mark.parametrize("n", range({TESTS}))
def test_subscribe(fal_mock, n):
    result = fal_client.subscribe("{DEV}", arguments={{"prompt": "a cat"}})
    assert result["images"]
'''

# What people write by hand instead: respx answering canned JSON for the three
# requests `subscribe` makes (submit, status, result).
_RESPX_SUITE = f'''
import fal_client
import pytest
import respx

QUEUE = "https://queue.fal.run/{DEV}"
REQUEST = "https://queue.fal.run/fal-ai/flux-1/requests/abc"

@pytest.fixture
def fal(monkeypatch):
    monkeypatch.setenv("FAL_KEY", "k")
    with respx.mock(assert_all_called=False) as router:
        router.post(QUEUE).respond(200, json={{
            "request_id": "abc", "status_url": REQUEST + "/status",
            "response_url": REQUEST, "cancel_url": REQUEST + "/cancel"}})
        router.get(REQUEST + "/status").respond(
            200, json={{"status": "COMPLETED", "request_id": "abc", "logs": None, "metrics": {{}}}})
        router.get(REQUEST).respond(200, json={{
            "images": [{{"url": "https://v3.fal.media/files/a.jpeg", "width": 1024,
                        "height": 768, "content_type": "image/jpeg"}}], "seed": 1}})
        yield router

@pytest.mark.parametrize("n", range({TESTS}))
def test_subscribe(fal, n):
    result = fal_client.subscribe("{DEV}", arguments={{"prompt": "a cat"}})
    assert result["images"]
'''

_EMPTY_SUITE = f"""
import pytest

@pytest.mark.parametrize("n", range({TESTS}))
def test_nothing(n):
    pass
"""

_ONE_TEST = """
def test_nothing():
    pass
"""


class Timing(NamedTuple):
    """One pytest run: wall time, and CPU time (user + system) of the process."""

    wall: float
    cpu: float


def _environment(pycache: Path | None) -> dict[str, str]:
    """The pytest processes' environment: bytecode cached under `pycache`, or none."""
    env = dict(os.environ)
    if pycache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _pytest_run(directory: Path, *args: str, env: dict[str, str] | None = None) -> Timing:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"pytest failed in {directory}:\n{done.stdout[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu)


def _interleaved(runs: dict[str, Callable[[], Timing]], rounds: int) -> dict[str, Timing]:
    times: dict[str, list[Timing]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(run())
    return {
        name: Timing(
            statistics.median(t.wall for t in values), statistics.median(t.cpu for t in values)
        )
        for name, values in times.items()
    }


def _suite(root: Path, name: str, text: str) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "test_suite.py").write_text(text)
    # An empty ini file: the directory is the rootdir, no project settings leak in.
    (directory / "pytest.ini").write_text("[pytest]\n")
    return directory


def fixture_overhead(rounds: int = 300) -> Timing:
    """`fal_mock`'s setup plus teardown (what the fixture calls), per test."""
    from mockserver.testing import InProcessFal, MockOptions

    for _ in range(20):  # warm-up: contracts loaded, code paths compiled
        InProcessFal(MockOptions()).start().stop()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        InProcessFal(MockOptions()).start().stop()
    return Timing((time.perf_counter() - wall) / rounds, (time.process_time() - cpu) / rounds)


def measure(rounds: int = 3) -> dict[str, Timing]:
    """Every number of the plugin section (seconds)."""
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as name:
        root = Path(name)
        suites = {
            "fal_mock": _suite(root, "fal_mock", _FAL_MOCK_SUITE),
            "respx": _suite(root, "respx", _RESPX_SUITE),
            "empty": _suite(root, "empty", _EMPTY_SUITE),
        }
        one = _suite(root, "one", _ONE_TEST)
        cached = _environment(root / "pycache")
        for path in suites.values():  # fills the bytecode cache; not timed
            _pytest_run(path, env=cached)
        runs: dict[str, Callable[[], Timing]] = {}
        for kind, path in suites.items():
            runs[kind] = functools.partial(_pytest_run, path, env=cached)
            runs[f"uncached_{kind}"] = functools.partial(_pytest_run, path, env=_environment(None))
        suite_times = _interleaved(runs, rounds)
        startup = _interleaved(
            {
                "with": functools.partial(_pytest_run, one, env=cached),
                "without": functools.partial(
                    _pytest_run, one, "-p", "no:fal_queue_harness", env=cached
                ),
            },
            rounds + 2,
        )
    return {
        **{f"suite_{kind}": seconds for kind, seconds in suite_times.items()},
        "startup_with": startup["with"],
        "startup_without": startup["without"],
        "fixture": fixture_overhead(),
    }


def report(numbers: dict[str, Timing], note: str = "") -> str:
    """The Markdown section for RESULTS.md (`note`: the run's conditions)."""
    ms = 1000.0
    lines = [
        PLUGIN_HEADING,
        "",
        f"A generated suite of {TESTS} tests, each one `fal_client.subscribe(...)`, each"
        " suite in a fresh pytest process; runs interleaved, median of each. CPU time"
        " (user + system of the pytest process) is the measure that a shared machine"
        " disturbs least; wall time is shown beside it. Bytecode cached, as in a"
        " developer's repeated runs (one untimed run of each suite fills the cache).",
        *(["", note] if note else []),
        "",
        "| suite | CPU | per test, CPU | wall | per test, wall |",
        "|---|---:|---:|---:|---:|",
    ]
    empty = numbers["suite_empty"]
    per: dict[str, Timing] = {}
    for kind, label in (
        ("fal_mock", "under `fal_mock`"),
        ("respx", "hand-written respx mock"),
        ("empty", "empty tests"),
    ):
        t = numbers[f"suite_{kind}"]
        per[kind] = Timing((t.wall - empty.wall) / TESTS, (t.cpu - empty.cpu) / TESTS)
        each = (
            f"{per[kind].cpu * ms:.1f} ms | {t.wall:.2f} s | {per[kind].wall * ms:.1f} ms"
            if kind != "empty"
            else f"| {t.wall:.2f} s |"
        )
        lines.append(f"| {label} | {t.cpu:.2f} s | {each} |")
    mock, respx = per["fal_mock"], per["respx"]
    uncached = {
        kind: numbers[f"suite_uncached_{kind}"].cpu - numbers["suite_uncached_empty"].cpu
        for kind in ("fal_mock", "respx")
    }
    fixture = numbers["fixture"]
    with_, without = numbers["startup_with"], numbers["startup_without"]
    lines += [
        "",
        f"- `fal_mock` per test / respx per test: **{mock.cpu / respx.cpu:.2f}x** CPU,"
        f" {mock.wall / respx.wall:.2f}x wall (goal: at most 2x)",
        f"- added per test by `fal_mock` over respx: **{(mock.cpu - respx.cpu) * ms:.1f} ms**"
        f" CPU, {(mock.wall - respx.wall) * ms:.1f} ms wall (goal: at most 10 ms)",
        f"- the fixture's setup + teardown: **{fixture.cpu * ms:.2f} ms** CPU,"
        f" {fixture.wall * ms:.2f} ms wall (goal: under 5 ms; in process, after a warm-up)",
        f"- pytest start-up, one trivial test: {with_.cpu * ms:.0f} ms CPU with the plugin,"
        f" {without.cpu * ms:.0f} ms with `-p no:fal_queue_harness`:"
        f" **{(with_.cpu - without.cpu) * ms:+.0f} ms** CPU"
        f" ({(with_.wall - without.wall) * ms:+.0f} ms wall) for having the package"
        " installed (goal: under 30 ms)",
        f"- without any bytecode cache (``PYTHONDONTWRITEBYTECODE=1``: every run parses,"
        f" rewrites and compiles the plugin's modules again, in its first `fal_mock` test):"
        f" {uncached['fal_mock'] / TESTS * ms:.1f} ms CPU per test under `fal_mock`,"
        f" {uncached['respx'] / TESTS * ms:.1f} ms with respx:"
        f" **{uncached['fal_mock'] / uncached['respx']:.2f}x**,"
        f" **{(uncached['fal_mock'] - uncached['respx']) / TESTS * ms:+.1f} ms** per test",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """Measure and print the section (``python -m benchmarks.plugin``)."""
    print(report(measure()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
