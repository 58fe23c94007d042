"""Live mode: replay the contract scenarios against a server and report conformance.

`mockserver check` is the command; `Checker` runs planned scenarios through an
`httpx.AsyncClient` (a real network, or the mock in process) and collects a
`Report` of pass/fail/note/skip results with evidence.
"""

from mockserver.check.pacing import ManualPacer, RealPacer
from mockserver.check.results import CheckResult, Evidence, Outcome, Report
from mockserver.check.runner import Checker, Planned, Settings, Target, plan
from mockserver.check.scenarios import Scenario, ScenarioError, load_scenarios

__all__ = [
    "CheckResult",
    "Checker",
    "Evidence",
    "ManualPacer",
    "Outcome",
    "Planned",
    "RealPacer",
    "Report",
    "Scenario",
    "ScenarioError",
    "Settings",
    "Target",
    "load_scenarios",
    "plan",
]
