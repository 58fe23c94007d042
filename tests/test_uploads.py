"""Uploads as fal-client does them: a CDN token, then the bytes."""

from __future__ import annotations

from starlette.testclient import TestClient

from mockserver import ManualClock, create_app
from tests.conftest import MockFactory, path_of


def _token(client: TestClient) -> str:
    response = client.post("/storage/auth/token?storage_type=fal-cdn-v3", json={})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "token_type", "base_url", "expires_at"}
    return f"{body['token_type']} {body['token']}"


def test_upload_and_download(client: TestClient) -> None:
    auth = _token(client)
    uploaded = client.post(
        "/files/upload",
        content=b"hello bytes",
        headers={
            "Authorization": auth,
            "Content-Type": "text/plain",
            "X-Fal-File-Name": "note.txt",
        },
    )
    assert uploaded.status_code == 200
    url = uploaded.json()["access_url"]
    assert url.startswith("http://testserver/files/uploads/") and url.endswith(".txt")
    fetched = client.get(path_of(url), headers={"Authorization": ""})
    assert fetched.content == b"hello bytes"
    assert fetched.headers["content-type"].startswith("text/plain")


def test_uploads_need_a_token_of_ours(client: TestClient) -> None:
    for auth in ("", "Bearer nope", "Bearer key-abc.nonce.0000", "Key test-key"):
        response = client.post("/files/upload", content=b"x", headers={"Authorization": auth})
        assert response.status_code == 401, auth
    assert (
        client.post("/storage/auth/token", json={}, headers={"Authorization": ""}).status_code
        == 401
    )


def test_a_token_stays_valid_for_another_mock_in_the_process(make_mock: MockFactory) -> None:
    with TestClient(create_app(make_mock()), headers={"Authorization": "Key k"}) as first:
        auth = _token(first)
    with TestClient(create_app(make_mock())) as second:
        assert (
            second.post("/files/upload", content=b"x", headers={"Authorization": auth}).status_code
            == 200
        )


def test_uploads_expire_and_are_bounded(make_mock: MockFactory, clock: ManualClock) -> None:
    mock = make_mock(max_body_bytes=100)
    with TestClient(create_app(mock), headers={"Authorization": "Key k"}) as client:
        auth = {"Authorization": _token(client)}
        url = client.post("/files/upload", content=b"x", headers=auth).json()["access_url"]
        assert client.post("/files/upload", content=b"x" * 101, headers=auth).status_code == 413
        clock.advance(3601)
        assert client.get(path_of(url)).status_code == 404
