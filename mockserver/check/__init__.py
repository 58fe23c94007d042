"""Live mode: replay the contract scenarios against a server and report conformance.

`mockserver check` is the command; `Checker` runs planned scenarios through an
`httpx.AsyncClient` (a real network, or the mock in process) and collects a
`Report` of pass/fail/note/skip results with evidence. The protocol's rules
themselves are plain functions over captured exchanges, in `judge`.
"""

from typing import Any

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.pacing import ManualPacer, RealPacer
from mockserver.check.plan import Planned, plan
from mockserver.check.results import CheckResult, Evidence, Report, Verdict
from mockserver.check.runner import Checker
from mockserver.check.scenarios import Scenario, ScenarioError, load_scenarios
from mockserver.check.target import Settings, Target

__all__ = [
    "CheckResult",
    "Checker",
    "Evidence",
    "Exchange",
    "Finding",
    "ManualPacer",
    "Planned",
    "RealPacer",
    "Report",
    "Scenario",
    "ScenarioError",
    "Settings",
    "Target",
    "Verdict",
    "load_scenarios",
    "plan",
]


def __getattr__(name: str) -> Any:
    # `mockserver.Outcome` is how a simulated run ends; a check's pass/fail/note/skip
    # is a `Verdict`. The old public name still works, and says so.
    if name == "Outcome":
        import warnings

        warnings.warn(
            "mockserver.check.Outcome is now mockserver.check.Verdict"
            " (mockserver.Outcome is the mock's outcome of a run)",
            DeprecationWarning,
            stacklevel=2,
        )
        return Verdict
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
