"""What a run will do: every (scenario, endpoint) pair, within the spending cap."""

from __future__ import annotations

from dataclasses import dataclass

from mockserver.catalog import Model
from mockserver.check.scenarios import Scenario
from mockserver.check.steps import STEP_KINDS, Where


@dataclass(frozen=True)
class NotRun:
    """Why a planned pair will not run: the check it is reported as, and the reason."""

    check: str
    reason: str
    name_steps: bool = True  # say which steps are not run (else just "not run")

    def text(self, scenario: Scenario) -> str:
        """The reason as reported: `submit, wait not run: ...` or `not run: ...`."""
        if not self.name_steps:
            return f"not run: {self.reason}"
        return f"{', '.join(step.kind for step in scenario.steps)} not run: {self.reason}"


NEEDS_RECEIVER = NotRun("not-run", "needs a webhook receiver (--webhook-listen; off by default)")


def over_budget(max_requests: int) -> NotRun:
    """Not run: it would pass the spending cap."""
    return NotRun("budget", f"over --max-requests ({max_requests})", name_steps=False)


@dataclass(frozen=True)
class Planned:
    """One scenario on one endpoint, as the run plans it; `skip` says why it will not run."""

    scenario: Scenario
    model: Model
    skip: NotRun | None = None

    @property
    def runs(self) -> bool:
        """It will be run."""
        return self.skip is None

    @property
    def label(self) -> str:
        """`scenario[endpoint]`."""
        return f"{self.scenario.id}[{self.model.endpoint_id}]"

    def describe(self, base_url: str) -> list[str]:
        """What its steps would send, one line each (nothing is sent)."""
        where = Where(base_url, self.model.endpoint_id)
        return [
            line
            for step in self.scenario.steps
            for line in STEP_KINDS[step.kind].describe(step.options, where)
        ]


def plan(
    scenarios: list[Scenario],
    models: list[Model],
    max_requests: int | None,
    *,
    receiver: bool = False,
) -> list[Planned]:
    """Every (scenario, endpoint) pair, in order: run unless over the cap or unable to.

    `receiver` says whether webhooks can be received; scenarios that need one
    are planned as not run (and cost nothing) without.
    """
    planned: list[Planned] = []
    spent = 0
    for scenario in scenarios:
        for model in scenario.endpoints(models):
            if not receiver and scenario.needs_receiver:
                planned.append(Planned(scenario, model, NEEDS_RECEIVER))
                continue
            cost = scenario.billable_submits
            if max_requests is not None and spent + cost > max_requests:
                planned.append(Planned(scenario, model, over_budget(max_requests)))
                continue
            spent += cost
            planned.append(Planned(scenario, model))
    return planned


def billable(planned: list[Planned]) -> int:
    """Submits a conforming server accepts (and may charge for) in this plan."""
    return sum(item.scenario.billable_submits for item in planned if item.runs)


def refusable(planned: list[Planned]) -> int:
    """Submits a conforming server refuses: billed too by one that takes them."""
    return sum(item.scenario.refused_submits for item in planned if item.runs)
