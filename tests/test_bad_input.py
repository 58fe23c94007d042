"""Bad input of every kind gets a clear fal-style JSON error, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mockserver import Catalog, FalMock, ManualClock, MockConfig, create_app
from tests.conftest import AUTH, DEV, MockFactory, path_of, submit


@pytest.mark.parametrize(
    ("content", "headers", "code", "kind"),
    [
        (b"{bad json", {"Content-Type": "application/json"}, 422, "json_invalid"),
        (b"", {"Content-Type": "application/json"}, 422, "missing"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 422, "dict_type"),
        (b'"just a string"', {"Content-Type": "application/json"}, 422, "dict_type"),
        (b"null", {"Content-Type": "application/json"}, 422, "dict_type"),
        (b"\xff\xfe", {"Content-Type": "application/json"}, 422, "json_invalid"),
        (b"[" * 100_000, {"Content-Type": "application/json"}, 422, "json_invalid"),
        # Numbers Python cannot hold or JSON cannot carry back (issue 10).
        (b'{"prompt": "x", "seed": ' + b"9" * 5000 + b"}", {}, 422, "json_invalid"),
        (b'{"prompt": "x", "seed": -' + b"9" * 1001 + b"}", {}, 422, "json_invalid"),
        (b'{"prompt": "x", "guidance_scale": 1e309}', {}, 422, "json_invalid"),
        (b'{"prompt": "x", "guidance_scale": NaN}', {}, 422, "json_invalid"),
        (b'{"prompt": "x", "guidance_scale": -Infinity}', {}, 422, "json_invalid"),
    ],
)
def test_malformed_bodies(
    client: TestClient, content: bytes, headers: dict[str, str], code: int, kind: str
) -> None:
    response = client.post(f"/{DEV}", content=content, headers=headers)
    assert response.status_code == code
    detail = response.json()["detail"]
    assert detail[0]["type"] == kind and detail[0]["loc"][0] == "body"


def test_wrong_content_type(client: TestClient) -> None:
    response = client.post(
        f"/{DEV}",
        content=b"prompt=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415 and "application/json" in response.json()["detail"]
    # a missing Content-Type is read as JSON, as curl users expect
    assert (
        client.post(f"/{DEV}", content=b'{"prompt": "x"}', headers={"Content-Type": ""}).status_code
        == 200
    )


def test_oversized_bodies_get_413(make_mock: MockFactory) -> None:
    with TestClient(create_app(make_mock(max_body_bytes=1000)), headers=AUTH) as client:
        big = {"prompt": "x" * 2000}
        declared = client.post(f"/{DEV}", json=big)
        assert declared.status_code == 413 and "limit 1000" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:
            yield b'{"prompt": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}'

        streamed = client.post(
            f"/{DEV}", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413


def test_multiple_problems_are_all_reported(client: TestClient) -> None:
    response = client.post(
        f"/{DEV}", json={"num_images": 0, "seed": "abc", "image_size": {"width": 10}}
    )
    assert response.status_code == 422
    locs = [tuple(entry["loc"]) for entry in response.json()["detail"]]
    assert locs == [
        ("body", "image_size"),
        ("body", "num_images"),
        ("body", "prompt"),
        ("body", "seed"),
    ]
    for entry in response.json()["detail"]:
        assert set(entry) == {"loc", "msg", "type"}


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/", 404),
        ("POST", "/nope", 404),
        ("POST", "/fal-ai/unknown-model", 404),
        ("GET", f"/{DEV}", 405),
        ("DELETE", f"/{DEV}", 405),
        ("PATCH", "/fal-ai/flux-1/requests/x", 405),
        ("POST", "/fal-ai/../flux-1/dev", 404),
        ("POST", "/fal-ai/flux-1/%2e%2e/dev", 404),
        ("POST", "/fal-ai//flux-1/dev", 404),
        ("GET", "/fal-ai/flux-1/requests/not-a-uuid/status", 422),
        ("GET", "/fal-ai/flux-1/requests/not-a-uuid", 422),
        ("PUT", "/fal-ai/flux-1/requests/not-a-uuid/cancel", 422),
        ("POST", "/fal-ai/flux-1/requests/00000000-0000-0000-0000-000000000000/status", 405),
        ("GET", "/files/rabbit/nothing.png", 404),
        ("GET", "/_mock/nothing", 404),
    ],
)
def test_unknown_paths_methods_and_ids(
    client: TestClient, method: str, path: str, code: int
) -> None:
    response = client.request(method, path, json={"prompt": "x"} if method == "POST" else None)
    assert response.status_code == code, response.text
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-Forwarded-Host": "evil.example/path"}, 400),
        ({"X-Forwarded-Host": "a b"}, 400),
        ({"X-Forwarded-Proto": "gopher"}, 400),
        ({"X-Fal-Queue-Priority": "urgent"}, 422),
        ({"X-Fal-Request-Timeout": "soon"}, 422),
        ({"X-Fal-Request-Timeout": "-5"}, 422),
        ({"Content-Length": "abc"}, 400),
    ],
)
def test_header_tricks(client: TestClient, headers: dict[str, str], code: int) -> None:
    response = client.post(
        f"/{DEV}",
        content=b'{"prompt": "x"}',
        headers={"Content-Type": "application/json", **headers},
    )
    assert response.status_code == code, response.text
    assert "detail" in response.json()


def test_bad_logs_parameter(client: TestClient) -> None:
    queued = submit(client)
    response = client.get(path_of(queued["status_url"]), params={"logs": "maybe"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "logs"]


def test_bad_input_never_loses_another_clients_job(client: TestClient, mock: FalMock) -> None:
    queued = submit(client)
    for body in (b"{", b"[]", b"x" * 10):
        client.post(f"/{DEV}", content=body, headers={"Content-Type": "application/json"})
    client.get(f"/fal-ai/flux-1/requests/{uuid.uuid4()}")
    assert client.get(path_of(queued["status_url"])).status_code == 202
    assert len(mock.engine) == 1


_segment = st.one_of(
    st.sampled_from(
        [
            "fal-ai",
            "flux-1",
            "dev",
            "requests",
            "status",
            "stream",
            "cancel",
            "..",
            ".",
            "",
            "%00",
            "%2f",
            "%2e%2e",
            "files",
            "_mock",
            "_run",
        ]
    ),
    st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#"),
        max_size=8,
    ),
    st.uuids().map(str),
)


@settings(max_examples=150)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    segments=st.lists(_segment, max_size=7),
    body=st.one_of(
        st.binary(max_size=200),
        st.builds(lambda p: f'{{"prompt": {p!r}}}'.encode(), st.text(max_size=20)),
    ),
    auth=st.sampled_from(["Key k", "Bearer k", "", "Key", "Key \u00e9"]),
    query=st.sampled_from(["", "?logs=1", "?logs=bogus", "?fal_webhook=http://x", "?logs=%00"]),
)
def test_no_input_makes_the_server_fail(
    catalog: Catalog, method: str, segments: list[str], body: bytes, auth: str, query: str
) -> None:
    mock = FalMock(MockConfig(instant=True), clock=ManualClock(), catalog=catalog)
    # raise_server_exceptions: any exception inside the app fails the test outright
    with TestClient(create_app(mock), raise_server_exceptions=True) as client:
        headers = {"Authorization": auth} if auth.isascii() else {}
        response = client.request(
            method, "/" + "/".join(segments).lstrip("/") + query, content=body, headers=headers
        )
        assert response.status_code < 500, (response.status_code, response.text)
        if method != "HEAD" and not response.headers.get("content-type", "").startswith("image/"):
            assert response.headers["content-type"].startswith("application/json"), response.text


def test_a_huge_number_is_named_and_the_server_stays_responsive(client: TestClient) -> None:
    response = client.post(f"/{DEV}", content=b'{"prompt": "x", "seed": ' + b"9" * 5000 + b"}")
    assert response.status_code == 422
    assert "5000 digits" in response.json()["detail"][0]["ctx"]["error"]
    submit(client)
    within = client.post(f"/{DEV}", content=b'{"prompt": "x", "seed": ' + b"9" * 999 + b"}")
    assert within.status_code == 422  # parsed, then out of the schema's range
    assert within.json()["detail"][0]["loc"] == ["body", "seed"]
