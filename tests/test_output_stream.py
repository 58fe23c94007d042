"""Streaming outputs (`POST {fal.run}/{endpoint}/stream`), in process.

In process the whole answer is read at once, so these runs are instant; how
the events follow the mock's clock is tested over TCP (tests/e2e/test_client_surface.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from starlette.testclient import TestClient

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.contracts import builtin_contracts_dir
from mockserver.faults import Fault
from mockserver.outcomes import Outcome
from mockserver.partials import StreamShape, partial_events
from tests.conftest import AUTH, DEV, MockFactory


def _events(body: str) -> list[Any]:
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


def test_partial_events_are_spread_over_the_run() -> None:
    events = partial_events(StreamShape(events=3, partial={"stage": "x"}), 10.0, 8.0)
    assert [e.at for e in events] == [12.0, 14.0, 16.0]
    assert events[0].data == {"progress": 0.25, "stage": "x"}
    assert partial_events(StreamShape(events=0), 0.0, 1.0) == []


def test_a_stream_sends_progress_then_the_full_output(make_mock: MockFactory) -> None:
    with TestClient(create_app(make_mock(instant=True)), headers=AUTH) as client:
        answer = client.post(f"/_run/{DEV}/stream", json={"prompt": "streamed", "seed": 5})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert len(answer.headers["x-fal-request-id"]) == 36
    events = _events(answer.text)
    assert [e.get("progress") for e in events[:-1]] == [0.25, 0.5, 0.75]
    final = events[-1]
    assert final["prompt"] == "streamed" and final["seed"] == 5 and final["images"]


def test_a_stream_on_the_run_host(make_mock: MockFactory) -> None:
    app = create_app(make_mock(instant=True))
    with TestClient(app, base_url="https://fal.run", headers=AUTH) as client:
        answer = client.post(f"/{DEV}/stream", json={"prompt": "on fal.run"})
    assert answer.status_code == 200 and _events(answer.text)[-1]["prompt"] == "on fal.run"


def test_a_contract_shapes_the_partial_events(tmp_path: Path) -> None:
    source = builtin_contracts_dir() / "models" / "fal-ai" / "flux-1" / "schnell.yaml"
    data = yaml.safe_load(source.read_text())
    data["endpoint_id"] = "acme/streamer"
    data["stream"] = {"events": 2, "partial": {"images": [], "stage": "denoising"}}
    (tmp_path / "streamer.yaml").write_text(yaml.safe_dump(data))
    mock = FalMock(MockConfig(instant=True, contracts=(tmp_path,)), clock=ManualClock())
    with TestClient(create_app(mock), headers=AUTH) as client:
        events = _events(client.post("/_run/acme/streamer/stream", json={"prompt": "p"}).text)
    assert events[:2] == [
        {"progress": 0.3333, "images": [], "stage": "denoising"},
        {"progress": 0.6667, "images": [], "stage": "denoising"},
    ]
    assert events[2]["prompt"] == "p" and len(events) == 3


def test_a_model_error_answers_the_error_not_a_stream(make_mock: MockFactory) -> None:
    mock = make_mock(instant=True)
    mock.next_outcome(DEV, Outcome.model_error())
    mock.next_outcome(DEV, Outcome.infra_error("runner_disconnected"))
    with TestClient(create_app(mock), headers=AUTH) as client:
        refused = client.post(f"/_run/{DEV}/stream", json={"prompt": "x"})
        failed = client.post(f"/_run/{DEV}/stream", json={"prompt": "x"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["type"]
    assert len(refused.headers["x-fal-request-id"]) == 36
    assert failed.status_code == 503 and failed.headers["x-fal-error-type"] == "runner_disconnected"


def test_bad_stream_requests_get_json_errors(mock: FalMock) -> None:
    with TestClient(create_app(mock), headers=AUTH) as client:
        assert client.post("/_run/acme/unknown/stream", json={}).status_code == 404
        assert client.get(f"/_run/{DEV}/stream").status_code == 405
        invalid = client.post(f"/_run/{DEV}/stream", json={"num_images": 2})
        assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == [
            "body",
            "prompt",
        ]
        unauthorised = client.post(
            f"/_run/{DEV}/stream", json={"prompt": "x"}, headers={"Authorization": ""}
        )
        assert unauthorised.status_code == 401
        mock.add_fault(Fault(status_code=503, action="run_stream"))
        assert client.post(f"/_run/{DEV}/stream", json={"prompt": "x"}).status_code == 503
    recorded = [r for r in mock.requests if r.action == "run_stream"]
    assert recorded[-1].endpoint_id == DEV and recorded[-1].status_code == 503
