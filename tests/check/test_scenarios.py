"""Scenario files: loading, validation errors, inputs, selection and the spending plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockserver.catalog import Catalog
from mockserver.check.plan import plan
from mockserver.check.scenarios import ScenarioError, load_scenario, load_scenarios, select
from mockserver.cli import main

GOOD = """\
id: mine
title: Mine
models: [fal-ai/flux-1/dev]
input: {num_images: 3, not_a_dev_field: 1, seed: null}
steps:
  - submit: {input: {extra: true}}
  - wait: {via: poll}
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_inputs_merge_over_the_recorded_example(tmp_path: Path, catalog: Catalog) -> None:
    scenario = load_scenario(_write(tmp_path, "mine.yaml", GOOD))
    model = catalog.get("fal-ai/flux-1/dev")
    assert model is not None
    data = scenario.input_for(model)
    assert data["prompt"] == model.examples[0]["input"]["prompt"]
    assert data["num_images"] == 3
    assert "not_a_dev_field" not in data  # scenario inputs keep to the model's fields
    assert "seed" not in data  # null removes
    assert (
        scenario.input_for(model, {"extra": True})["extra"] is True
    )  # a step's own input is sent as is
    assert scenario.billable_submits == 1
    assert [m.endpoint_id for m in scenario.endpoints(catalog)] == ["fal-ai/flux-1/dev"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("id: x\ntitle: t\nmodels: all\nsteps:\n  - dance: {}\n", "steps.0"),
        ("id: x\ntitle: t\nmodels: all\nsteps:\n  - cancel: {}\n", "'when' is a required property"),
        ("id: X!\ntitle: t\nmodels: all\nsteps:\n  - unknown: {}\n", "id: 'X!' does not match"),
        ("id: x\ntitle: t\nmodels: {output: sound}\nsteps:\n  - unknown: {}\n", "models"),
        ("id: x\ntitle: t\nmodels: all\nsteps: [\n", "mine.yaml"),
    ],
)
def test_a_malformed_scenario_names_the_file_and_the_field(
    tmp_path: Path, text: str, says: str
) -> None:
    path = _write(tmp_path, "mine.yaml", text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value) and says in str(caught.value)


def test_the_command_reports_a_bad_scenario_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "bad.yaml", "id: x\ntitle: t\nmodels: all\nsteps: []\n")
    code = main(
        ["check", "--base-url", "http://127.0.0.1:9", "--scenarios-dir", str(tmp_path), "--dry-run"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "bad.yaml" in err and "steps" in err


def test_selection_by_glob() -> None:
    scenarios = load_scenarios()
    assert [s.id for s in select(scenarios, ["cancel-*"])] == ["cancel-completed", "cancel-queued"]
    with pytest.raises(ScenarioError, match="no scenario matches nope"):
        select(scenarios, ["nope"])


def test_the_plan_keeps_within_the_spending_cap(catalog: Catalog) -> None:
    scenarios = select(load_scenarios(), ["happy-path", "auth", "unknown-request"])
    planned = plan(scenarios, list(catalog), max_requests=4)
    budgeted = [p for p in planned if p.runs]
    spent = sum(p.scenario.billable_submits for p in budgeted)
    assert spent == 4
    # scenarios that cannot cost anything always run
    assert {p.scenario.id for p in budgeted} >= {"auth", "unknown-request"}
    assert [p.label for p in planned if not p.runs]  # the rest is listed as not run
    assert all(p.runs for p in plan(scenarios, list(catalog), None))
