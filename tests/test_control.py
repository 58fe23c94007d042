"""The control API under /_mock/ and its Python twin."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from mockserver import (
    Catalog,
    FalMock,
    Fault,
    MockConfig,
    NotManualClock,
    RealClock,
    create_app,
)
from mockserver.markers import field_digests
from mockserver.redact import fingerprint
from tests.conftest import DEV, path_of, submit


def test_health_and_models(client: TestClient) -> None:
    health = client.get("/_mock/health").json()
    assert health["status"] == "ok" and health["profile"] == "official"
    assert health["clock"]["manual"] is True
    models = client.get("/_mock/models").json()
    assert {"endpoint_id": DEV, "title": "FLUX.1 [dev] text to image", "output": "images"} in models


def test_advance_the_clock_over_http(client: TestClient) -> None:
    queued = submit(client)
    before = client.get("/_mock/clock").json()["timestamp"]
    advanced = client.post("/_mock/clock/advance", json={"seconds": 2.5}).json()
    assert advanced["timestamp"] == before + 2.5
    assert client.get(path_of(queued["status_url"])).json()["status"] == "COMPLETED"
    assert client.post("/_mock/clock/advance", json={"seconds": -1}).status_code == 422
    assert client.post("/_mock/clock/advance", json={"seconds": "1"}).status_code == 422
    assert client.post("/_mock/clock/advance", content=b"{").status_code == 422


def test_advance_needs_a_manual_clock(catalog: Catalog) -> None:
    mock = FalMock(MockConfig(), clock=RealClock(), catalog=catalog)
    with TestClient(create_app(mock)) as client:
        response = client.post("/_mock/clock/advance", json={"seconds": 1})
        assert response.status_code == 409 and "manual clock" in response.json()["detail"]
    with pytest.raises(NotManualClock, match="manual clock"):
        mock.advance(1)


def test_reset_forgets_everything(client: TestClient, mock: FalMock) -> None:
    queued = submit(client)
    mock.add_fault(Fault(status_code=503, times=None, action="result"))
    assert client.post("/_mock/reset").json() == {"status": "reset"}
    assert client.get("/_mock/requests").json() == []
    assert client.get("/_mock/jobs").json() == []
    assert client.get("/_mock/faults").json() == []
    assert client.get(path_of(queued["status_url"])).status_code == 404


def test_requests_listing_filters_by_action(client: TestClient) -> None:
    queued = submit(client, prompt="hello")
    client.get(path_of(queued["status_url"]))
    submits = client.get("/_mock/requests", params={"action": "submit"}).json()
    assert len(submits) == 1
    assert submits[0]["body"] == {"prompt": "hello"}
    assert submits[0]["endpoint_id"] == DEV
    assert submits[0]["request_id"] == queued["request_id"]
    assert submits[0]["headers"]["authorization"] == "Key ***"
    statuses = client.get("/_mock/requests", params={"action": "status"}).json()
    assert statuses[0]["status_code"] == 202


def test_outcomes_over_http(client: TestClient) -> None:
    set_ = client.post(
        "/_mock/outcomes", json={"endpoint_id": DEV, "outcome": {"kind": "model_error"}}
    )
    assert set_.status_code == 200
    queued = submit(client)
    client.post("/_mock/clock/advance", json={"seconds": 10})
    assert client.get(path_of(queued["response_url"])).status_code == 422
    bad = client.post("/_mock/outcomes", json={"endpoint_id": "nope/nope", "outcome": {}})
    assert bad.status_code == 422 and "endpoint_id" in bad.json()["detail"]
    assert client.post("/_mock/outcomes", json={"outcome": {"kind": "boom"}}).status_code == 422
    assert client.post("/_mock/outcomes", json={"outcome": {}, "times": 0}).status_code == 422


def test_jobs_inspection(client: TestClient) -> None:
    queued = submit(client)
    jobs = client.get("/_mock/jobs").json()
    assert [j["request_id"] for j in jobs] == [queued["request_id"]]
    one = client.get(f"/_mock/jobs/{queued['request_id']}").json()
    assert one["status"] == "IN_QUEUE" and one["endpoint_id"] == DEV
    assert client.get("/_mock/jobs/unknown").status_code == 404


def test_fault_status_code_and_retry_after(client: TestClient) -> None:
    added = client.post(
        "/_mock/faults", json={"status_code": 429, "retry_after": 3, "action": "submit"}
    ).json()
    assert added["times"] == 1
    limited = client.post(f"/{DEV}", json={"prompt": "x"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert "detail" in limited.json()
    assert client.post(f"/{DEV}", json={"prompt": "x"}).status_code == 200  # used up


def test_faults_match_endpoint_and_action(client: TestClient) -> None:
    client.post(
        "/_mock/faults", json={"status_code": 503, "endpoint": "fal-ai/flux-pro", "times": 2}
    )
    assert client.post(f"/{DEV}", json={"prompt": "x"}).status_code == 200
    kontext = client.post("/fal-ai/flux-pro/kontext/text-to-image", json={"prompt": "x"})
    assert kontext.status_code == 503
    assert len(client.get("/_mock/faults").json()) == 1  # one use left
    assert client.delete("/_mock/faults").json() == []


def test_injected_5xx_does_not_create_or_lose_jobs(client: TestClient, mock: FalMock) -> None:
    queued = submit(client)
    mock.add_fault(Fault(status_code=502, action="status"))
    assert client.get(path_of(queued["status_url"])).status_code == 502
    assert client.get(path_of(queued["status_url"])).status_code == 202
    assert len(mock.engine) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status_code": 200},
        {"latency": -1},
        {"drop": "yes"},
        {"status_code": 500, "action": "explode"},
        {"status_code": 500, "times": 0},
        {"status_code": 500, "unknown": 1},
        [],
    ],
)
def test_bad_fault_definitions(client: TestClient, body: object) -> None:
    response = client.post("/_mock/faults", json=body)
    assert response.status_code == 422 and isinstance(response.json()["detail"], str)


def test_dropped_connection_in_process(client: TestClient, mock: FalMock) -> None:
    # In process the transport does not check Content-Length: what arrives is a
    # truncated body. (The real-server test sees the connection close.)
    mock.add_fault(Fault(drop=True, action="submit"))
    response = client.post(f"/{DEV}", json={"prompt": "x"})
    assert response.content == b'{"status":'


def test_openapi_document(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/fal-ai/flux-1/dev" in doc["paths"]
    assert "/{owner}/{alias}/requests/{request_id}/status" in doc["paths"]
    schema_ref = doc["paths"]["/fal-ai/flux-1/dev"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    schema = doc["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert schema["required"] == ["prompt"]
    assert "$ref" not in str(schema)  # self-contained


def test_request_log_is_bounded(catalog: Catalog) -> None:
    from mockserver import ManualClock

    mock = FalMock(
        MockConfig(request_log_size=5, instant=True), clock=ManualClock(), catalog=catalog
    )
    with TestClient(create_app(mock), headers={"Authorization": "Key k"}) as client:
        for i in range(8):
            client.post(f"/{DEV}", json={"prompt": f"p{i}"})
    assert [r.body["prompt"] for r in mock.requests] == ["p3", "p4", "p5", "p6", "p7"]


def test_requests_filter_by_marker_follows_the_request_ids(client: TestClient) -> None:
    auth = {"Authorization": "Key kid-1:ksecret-2"}
    marked = client.post("/fal-ai/flux-1/schnell", json={"prompt": "x mk-abc"}, headers=auth)
    client.post("/fal-ai/flux-1/schnell", json={"prompt": "other"}, headers=auth)
    request_id = marked.json()["request_id"]
    client.get(f"/fal-ai/flux-1/requests/{request_id}/status", headers=auth)
    entries = client.get("/_mock/requests", params={"marker": "mk-abc"}).json()
    assert [(e["action"], e["request_id"]) for e in entries] == [
        ("submit", request_id),
        ("status", request_id),
    ]
    # Whose key it was, by fingerprint (whole key, then each half); never the key.
    assert entries[0]["key_fingerprints"] == [
        fingerprint("kid-1:ksecret-2"),
        fingerprint("kid-1"),
        fingerprint("ksecret-2"),
    ]
    assert "ksecret-2" not in json.dumps(entries)
    only = client.get("/_mock/requests", params={"request_id": request_id, "action": "status"})
    assert [e["action"] for e in only.json()] == ["status"]
    too_long = client.get("/_mock/requests", params={"marker": "m" * 300})
    assert too_long.status_code == 422 and "marker" in too_long.json()["detail"]


def test_a_submit_refused_by_a_fault_is_logged_with_its_body(client: TestClient) -> None:
    client.post("/_mock/faults", json={"status_code": 503, "action": "submit"})
    auth = {"Authorization": "Key k"}
    refused = client.post("/fal-ai/flux-1/schnell", json={"prompt": "mk-refused"}, headers=auth)
    assert refused.status_code == 503
    entries = client.get("/_mock/requests", params={"marker": "mk-refused"}).json()
    assert [(e["status_code"], e["body"]) for e in entries] == [(503, {"prompt": "mk-refused"})]


def test_markers_count_accepted_submits_of_a_watched_prefix(client: TestClient) -> None:
    assert client.get("/_mock/markers", params={"prefix": "run-x"}).status_code == 404
    assert client.post("/_mock/markers", json={"prefix": "a b"}).status_code == 422
    assert client.post("/_mock/markers", json={"prefix": "run-x"}).json()["markers"] == {}
    auth = {"Authorization": "Key k"}
    for prompt in ("run-x-1", "run-x-1", "run-x-2", "other"):
        client.post("/fal-ai/flux-1/schnell", json={"prompt": prompt}, headers=auth)
    client.post(
        "/fal-ai/flux-1/schnell", json={"num_images": 99, "prompt": "run-x-3"}, headers=auth
    )
    seen = client.get("/_mock/markers", params={"prefix": "run-x"}).json()["markers"]
    assert {m: len(jobs) for m, jobs in seen.items()} == {"run-x-1": 2, "run-x-2": 1}
    assert seen["run-x-2"][0]["key_fingerprint"] == fingerprint("k")
    assert seen["run-x-2"][0]["fields"] == field_digests({"prompt": "run-x-2"})
    assert seen["run-x-2"][0]["cancels"] == 0
    request_id = seen["run-x-2"][0]["request_id"]
    client.put(f"/fal-ai/flux-1/requests/{request_id}/cancel", headers=auth)
    again = client.get("/_mock/markers", params={"prefix": "run-x"}).json()["markers"]
    assert again["run-x-2"][0]["cancels"] == 1 and again["run-x-1"][0]["cancels"] == 0
    client.post("/_mock/reset")
    assert client.get("/_mock/markers", params={"prefix": "run-x"}).status_code == 404
