"""Scenarios: the conformance checks as data files under `contracts/scenarios/`."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from mockserver.catalog import Model
from mockserver.check.steps import STEP_KINDS
from mockserver.contracts import builtin_contracts_dir, load_data_file, protocol_dir


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Step:
    """One step of a scenario: its kind and its options."""

    kind: str
    options: dict[str, Any]

    @property
    def billable(self) -> bool:
        """True for a submit the server should accept (and may charge for)."""
        return STEP_KINDS[self.kind].billable(self.options)

    @property
    def refused(self) -> bool:
        """True for a submit the server should refuse (charged only if it does not)."""
        return STEP_KINDS[self.kind].refused(self.options)

    @property
    def needs_receiver(self) -> bool:
        """True for a step that needs a webhook receiver."""
        return STEP_KINDS[self.kind].needs_receiver(self.options)


@dataclass(frozen=True)
class Scenario:
    """One scenario file."""

    id: str
    title: str
    description: str
    models: Any
    limit: int | None
    input: dict[str, Any]
    steps: tuple[Step, ...]
    source: Path

    @property
    def billable_submits(self) -> int:
        """Submits per endpoint that a conforming server accepts."""
        return sum(step.billable for step in self.steps)

    @property
    def refused_submits(self) -> int:
        """Submits per endpoint that a conforming server refuses."""
        return sum(step.refused for step in self.steps)

    @property
    def needs_receiver(self) -> bool:
        """A step needs a webhook receiver (--webhook-listen)."""
        return any(step.needs_receiver for step in self.steps)

    def endpoints(self, catalog: Iterable[Model]) -> list[Model]:
        """The models (of a catalog, in its order) this scenario runs on."""
        models = list(catalog)
        if self.models == "all":
            chosen = models
        elif isinstance(self.models, list):
            wanted = self.models
            chosen = [m for m in models if any(fnmatch.fnmatch(m.endpoint_id, w) for w in wanted)]
        else:
            chosen = [m for m in models if all(_matches(m, k, v) for k, v in self.models.items())]
        return chosen[: self.limit] if self.limit else chosen

    def input_for(self, model: Model, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The model's first example input, with this scenario's input and `overrides` on top.

        Fields the model does not take are dropped from the scenario's input
        (a scenario may be shared by models with different parameters); a None
        value removes a field.
        """
        data: dict[str, Any] = copy.deepcopy(model.examples[0]["input"]) if model.examples else {}
        known = set(model.input_schema.get("properties", {}))
        for source, only_known in ((self.input, True), (overrides or {}, False)):
            for name, value in source.items():
                if only_known and name not in known:
                    continue
                if value is None:
                    data.pop(name, None)
                else:
                    data[name] = copy.deepcopy(value)
        return data


def _matches(model: Model, field: str, wanted: Any) -> bool:
    """A model's contract field is the wanted value, or one of a list of them."""
    value = getattr(model, field)
    return value in wanted if isinstance(wanted, list) else bool(value == wanted)


def scenarios_dir() -> Path:
    """The scenarios shipped with the package."""
    return builtin_contracts_dir() / "scenarios"


def scenario_schema() -> dict[str, Any]:
    """The JSON schema of a scenario file: the file's envelope, with each step kind
    and its options from `STEP_KINDS` (their one definition)."""
    schema: dict[str, Any] = load_data_file(protocol_dir() / "scenario.schema.yaml")
    schema["properties"]["steps"]["items"]["properties"] = {
        name: kind.options for name, kind in STEP_KINDS.items()
    }
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(scenario_schema())


def load_scenario(path: Path) -> Scenario:
    """Load and check one scenario file; `ScenarioError` names the file and problem."""
    try:
        data = load_data_file(path)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from exc
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.path])
    if errors:
        raise ScenarioError(
            "\n".join(
                f"{path}: {'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}"
                for e in errors
            )
        )
    steps = tuple(
        Step(kind, dict(options)) for item in data["steps"] for kind, options in item.items()
    )
    return Scenario(
        id=data["id"],
        title=data["title"],
        description=data.get("description", "").strip(),
        models=data["models"],
        limit=data.get("limit"),
        input=data.get("input", {}),
        steps=steps,
        source=path,
    )


def load_scenarios(*directories: Path) -> list[Scenario]:
    """Every scenario of the directories (the shipped ones when none is given), by id."""
    found: dict[str, Scenario] = {}
    for directory in directories or (scenarios_dir(),):
        if not directory.is_dir():
            raise ScenarioError(f"{directory}: scenarios directory does not exist")
        for path in sorted(directory.glob("*.y*ml")) + sorted(directory.glob("*.json")):
            scenario = load_scenario(path)
            found[scenario.id] = scenario
    return sorted(found.values(), key=lambda s: s.id)


def select(scenarios: list[Scenario], patterns: list[str] | None) -> list[Scenario]:
    """The scenarios whose id matches any glob pattern (all when none is given)."""
    if not patterns:
        return scenarios
    chosen = [s for s in scenarios if any(fnmatch.fnmatch(s.id, p) for p in patterns)]
    if not chosen:
        known = ", ".join(s.id for s in scenarios)
        raise ScenarioError(f"no scenario matches {', '.join(patterns)} (known: {known})")
    return chosen
