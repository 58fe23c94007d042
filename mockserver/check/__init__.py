"""Live mode: replay the contract scenarios against a server and report conformance.

`mockserver check` is the command; `Checker` runs planned scenarios through an
`httpx.AsyncClient` (a real network, or the mock in process) and collects a
`Report` of pass/fail/note/skip results with evidence. The protocol's rules
themselves are plain functions over captured exchanges, in `judge`.
"""

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.pacing import ManualPacer, RealPacer
from mockserver.check.plan import Planned, plan
from mockserver.check.results import CheckResult, Evidence, Outcome, Report
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
