"""Both profiles' auth and URL behaviour, keys, and tenant isolation."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient

from mockserver import INTERMEDIARY, ManualClock, create_app, rewrite_url
from tests.conftest import DEV, MockFactory, path_of


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "Missing Authorization header"),
        ({"Authorization": ""}, "Missing Authorization header"),
        ({"Authorization": "Bearer abc"}, "expected 'Key <key>'"),
        ({"Authorization": "Key"}, "expected 'Key <key>'"),
        ({"Authorization": "Key   "}, "expected 'Key <key>'"),
        ({"Authorization": "Basic YTpi"}, "expected 'Key <key>'"),
    ],
)
def test_official_profile_requires_key_scheme(
    make_mock: MockFactory, headers: dict[str, str], fragment: str
) -> None:
    with TestClient(create_app(make_mock())) as client:
        response = client.post(f"/{DEV}", json={"prompt": "x"}, headers=headers)
        assert response.status_code == 401
        assert fragment in response.json()["detail"]


def test_official_accepts_lowercase_scheme_and_id_secret_keys(make_mock: MockFactory) -> None:
    with TestClient(create_app(make_mock())) as client:
        for value in ("key abc", "Key id:secret", "KEY abc"):
            assert (
                client.post(
                    f"/{DEV}", json={"prompt": "x"}, headers={"Authorization": value}
                ).status_code
                == 200
            )


def test_intermediary_profile_bearer_and_queue_fal_run_urls(
    make_mock: MockFactory, clock: ManualClock
) -> None:
    mock = make_mock(profile=INTERMEDIARY)
    with TestClient(create_app(mock), base_url="http://127.0.0.1:8000") as client:
        assert (
            client.post(
                f"/{DEV}", json={"prompt": "x"}, headers={"Authorization": "Key k"}
            ).status_code
            == 401
        )
        body = client.post(
            f"/{DEV}", json={"prompt": "x"}, headers={"Authorization": "Bearer hk-key"}
        ).json()
        request_id = body["request_id"]
        # exactly the shape of the seed tutorial's example
        assert body["response_url"] == f"https://queue.fal.run/fal-ai/flux-1/requests/{request_id}"
        assert (
            body["status_url"]
            == f"https://queue.fal.run/fal-ai/flux-1/requests/{request_id}/status"
        )
        assert (
            body["cancel_url"]
            == f"https://queue.fal.run/fal-ai/flux-1/requests/{request_id}/cancel"
        )
        # ...which callers rewrite onto the intermediary's base, where they work
        status_url = rewrite_url(body["status_url"], "http://127.0.0.1:8000")
        assert client.get(status_url, headers={"Authorization": "Bearer hk-key"}).status_code == 202
        clock.advance(5)
        result_url = rewrite_url(body["response_url"], "http://127.0.0.1:8000")
        output = client.get(result_url, headers={"Authorization": "Bearer hk-key"}).json()
        # media stay downloadable from the mock itself
        assert output["images"][0]["url"].startswith("http://127.0.0.1:8000/files/")


def test_configured_keys(make_mock: MockFactory) -> None:
    with TestClient(create_app(make_mock(keys=frozenset({"good"})))) as client:
        bad = client.post(f"/{DEV}", json={"prompt": "x"}, headers={"Authorization": "Key bad"})
        assert bad.status_code == 401 and bad.json() == {"detail": "Invalid API key"}
        assert (
            client.post(
                f"/{DEV}", json={"prompt": "x"}, headers={"Authorization": "Key good"}
            ).status_code
            == 200
        )


def test_a_request_is_visible_only_to_its_key(make_mock: MockFactory, clock: ManualClock) -> None:
    with TestClient(create_app(make_mock())) as client:
        alice = {"Authorization": "Key alice"}
        mallory = {"Authorization": "Key mallory"}
        body = client.post(f"/{DEV}", json={"prompt": "x"}, headers=alice).json()
        clock.advance(5)
        for method, url in (
            ("GET", body["status_url"]),
            ("GET", body["response_url"]),
            ("GET", body["status_url"] + "/stream"),
            ("PUT", body["cancel_url"]),
        ):
            response = client.request(method, path_of(url), headers=mallory)
            assert response.status_code == 404, (method, url)
        assert client.get(path_of(body["response_url"]), headers=alice).status_code == 200


def test_keys_never_appear_in_recordings_or_reprs(make_mock: MockFactory) -> None:
    secret = "super-secret-" + uuid.uuid4().hex
    mock = make_mock(keys=frozenset({secret}))
    with TestClient(create_app(mock)) as client:
        client.post(
            f"/{DEV}?api_key={secret}",
            json={"prompt": "x"},
            headers={"Authorization": f"Key {secret}", "X-Api-Key": secret},
        )
        listing = client.get("/_mock/requests").text
        jobs = client.get("/_mock/jobs").text
    assert secret not in listing and secret not in jobs
    assert secret not in repr(mock) and secret not in repr(mock.config)
    assert secret not in repr(mock.requests)
    assert "Key ***" in listing
