"""What the OpenAPI document says, the server does (quick checks; Schemathesis
does the thorough ones in test_openapi_conformance.py)."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from tests.conftest import DEV, submit

REQUEST = "/fal-ai/flux-1/requests/00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", f"{REQUEST}/status", "GET"),
        ("DELETE", f"{REQUEST}/status", "GET"),
        ("POST", f"{REQUEST}/status/stream", "GET"),
        ("PATCH", REQUEST, "GET"),
        ("OPTIONS", f"{REQUEST}/cancel", "PUT"),
        ("OPTIONS", f"/{DEV}", "POST"),
        ("DELETE", f"/{DEV}", "POST"),
    ],
)
def test_405s_allow_only_what_the_operation_takes(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405 and response.headers["allow"] == allow
    assert response.json()["detail"]


@pytest.mark.parametrize("action", ["status", "status/stream", "", "cancel"])
def test_401_and_422_are_documented_on_every_request_operation(
    client: TestClient, action: str
) -> None:
    path = "/{owner}/{alias}/requests/{request_id}" + (f"/{action}" if action else "")
    item = client.get("/openapi.json").json()["paths"][path]
    operation = item["put" if action == "cancel" else "get"]
    assert {"401", "404", "422"} <= set(operation["responses"])


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("http://127.0.0.1:9/hook?token=1", True),
        ("https://example.com", True),
        ("", False),
        ("http://[", False),  # was a 500: urlsplit raises on it
        ("http://[::1]:9/hook", False),
        ("http://a\n", False),
        ("ftp://a", False),
        ("http://" + "a" * 2050, False),
    ],
)
def test_fal_webhook_is_what_the_document_says(
    client: TestClient, value: str, accepted: bool
) -> None:
    doc = client.get("/openapi.json").json()
    [parameter] = doc["paths"][f"/{DEV}"]["post"]["parameters"]
    schema = parameter["schema"]
    documented = len(value) <= schema["maxLength"] and bool(re.search(schema["pattern"], value))
    response = client.post(f"/{DEV}", params={"fal_webhook": value}, json={"prompt": "x"})
    assert documented is accepted
    assert response.status_code == (200 if accepted else 422)
    if not accepted:
        assert response.json()["detail"][0]["loc"] == ["query", "fal_webhook"]


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("", True), ("1", True), (" TRUE ", True), ("off", True), ("2", False), ("yes!", False)],
)
def test_logs_is_what_the_document_says(client: TestClient, value: str, accepted: bool) -> None:
    queued = submit(client)
    doc = client.get("/openapi.json").json()
    pattern = doc["components"]["parameters"]["Logs"]["schema"]["pattern"]
    assert bool(re.search(pattern, value)) is accepted
    status = client.get(
        f"/fal-ai/flux-1/requests/{queued['request_id']}/status", params={"logs": value}
    )
    assert status.status_code == (202 if accepted else 422)


def test_the_surface_beyond_the_queue_is_listed(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/tokens/", "post"),
        ("/storage/upload/initiate", "post"),
        ("/storage/upload/initiate-multipart", "post"),
        (f"/_run/{DEV}/stream", "post"),
        ("/api/fal/proxy", "post"),
        ("/api/_fal/proxy", "get"),
    ]:
        assert method in paths[path], path
    stream = paths[f"/_run/{DEV}/stream"]["post"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"]
    assert "201" in paths["/tokens/"]["post"]["responses"]  # fal answers the token with 201


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (f"https://queue.fal.run/{DEV}", True),
        (f"HTTPS://Queue.FAL.run/{DEV}", True),
        (f"https://fal.run:443/{DEV}", True),
        ("https://notfal.run.example/x", False),
        ("https://fal.run.example.com/x", False),
        ("ftp://fal.run/x", False),
        ("https://fal.run/" + "a" * 4100, False),
    ],
)
def test_x_fal_target_url_is_what_the_document_says(
    client: TestClient, value: str, accepted: bool
) -> None:
    [parameter] = client.get("/openapi.json").json()["paths"]["/api/fal/proxy"]["parameters"]
    schema = parameter["schema"]
    documented = len(value) <= schema["maxLength"] and bool(re.search(schema["pattern"], value))
    answer = client.post("/api/fal/proxy", headers={"x-fal-target-url": value}, json={})
    assert documented is accepted
    assert (answer.status_code == 412) is not accepted, answer.text
