"""fal's storage API: signed-URL uploads (both storage types), multipart on both paths."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from mockserver import FalMock, ManualClock, create_app
from mockserver.uploads import UploadStore
from tests.conftest import AUTH, MockFactory, path_of


@pytest.fixture
def storage_client(make_mock: MockFactory) -> Iterator[TestClient]:
    with TestClient(create_app(make_mock(max_body_bytes=1024)), headers=AUTH) as client:
        yield client


def _initiate(
    client: TestClient, kind: str = "initiate", storage_type: str = "gcs"
) -> dict[str, str]:
    answer = client.post(
        f"/storage/upload/{kind}?storage_type={storage_type}",
        json={"content_type": "text/plain", "file_name": "note.txt"},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, str] = answer.json()
    assert set(body) == {"upload_url", "file_url"}
    return body


@pytest.mark.parametrize("storage_type", ["gcs", "fal-cdn-v3"])
def test_initiate_then_put_serves_the_exact_bytes(
    storage_client: TestClient, storage_type: str
) -> None:
    urls = _initiate(storage_client, storage_type=storage_type)
    assert storage_client.get(path_of(urls["file_url"])).status_code == 404  # not yet
    put = storage_client.put(
        path_of(urls["upload_url"]), content=b"exact \x00 bytes", headers={"Authorization": ""}
    )
    assert put.status_code == 200
    served = storage_client.get(path_of(urls["file_url"]))
    assert served.content == b"exact \x00 bytes" and served.headers["content-type"].startswith(
        "text/plain"
    )
    assert urls["file_url"].endswith(".txt")
    # the upload URL is used up
    again = storage_client.put(path_of(urls["upload_url"]), content=b"x")
    assert again.status_code == 404 and "initiate" in again.json()["detail"]


def test_signed_multipart_upload_joins_parts_in_order(storage_client: TestClient) -> None:
    urls = _initiate(storage_client, "initiate-multipart")
    upload = path_of(urls["upload_url"])
    second = storage_client.put(f"{upload}/2", content=b"world")
    first = storage_client.put(f"{upload}/1", content=b"hello ")
    assert first.json() == {"partNumber": 1, "etag": first.headers["etag"]}
    parts = [second.json(), first.json()]  # unsorted, as clients may send them
    done = storage_client.post(f"{upload}/complete", json={"parts": parts})
    assert done.status_code == 200
    assert storage_client.get(path_of(urls["file_url"])).content == b"hello world"


def test_cdn_multipart_upload_as_fal_client_does_it(storage_client: TestClient) -> None:
    token = storage_client.post("/storage/auth/token?storage_type=fal-cdn-v3", json={}).json()
    auth = {"Authorization": f"{token['token_type']} {token['token']}"}
    created = storage_client.post(
        "/files/upload/multipart",
        headers={**auth, "Content-Type": "application/octet-stream", "X-Fal-File-Name": "b.bin"},
    ).json()
    base = f"{path_of(created['access_url'])}/multipart/{created['uploadId']}"
    etags = [
        {
            "partNumber": n,
            "etag": storage_client.put(f"{base}/{n}", content=data, headers=auth).headers["etag"],
        }
        for n, data in ((1, b"ab"), (2, b"cd"))
    ]
    refused = storage_client.put(f"{base}/3", content=b"x")  # the API key is not the token
    assert refused.status_code == 401
    done = storage_client.post(f"{base}/complete", json={"parts": etags}, headers=auth)
    assert done.status_code == 200
    assert storage_client.get(path_of(created["access_url"])).content == b"abcd"


def test_bad_storage_requests_get_json_errors(storage_client: TestClient) -> None:
    client = storage_client
    wrong_type = client.post(
        "/storage/upload/initiate?storage_type=s3", json={"content_type": "a/b"}
    )
    assert wrong_type.status_code == 422 and wrong_type.json()["detail"][0]["loc"] == [
        "query",
        "storage_type",
    ]
    assert client.get("/storage/upload/initiate").status_code == 405
    bad_body = client.post("/storage/upload/initiate", json={"content_type": 5})
    assert bad_body.status_code == 422
    assert (
        client.post("/storage/upload/initiate", json={}, headers={"Authorization": ""}).status_code
        == 401
    )
    single = path_of(_initiate(client)["upload_url"])
    assert client.post(single, content=b"x").status_code == 405
    assert client.put(f"{single}/1", content=b"x").status_code == 400  # not multipart
    too_big = client.put(single, content=b"x" * 1025)
    assert too_big.status_code == 413 and "detail" in too_big.json()
    multi = path_of(_initiate(client, "initiate-multipart")["upload_url"])
    assert client.put(multi, content=b"whole").status_code == 400
    client.put(f"{multi}/1", content=b"a")
    missing = client.post(
        f"{multi}/complete", json={"parts": [{"partNumber": 1}, {"partNumber": 2}]}
    )
    assert missing.status_code == 400 and "[2]" in missing.json()["detail"]
    wrong_etag = client.post(f"{multi}/complete", json={"parts": [{"partNumber": 1, "etag": "x"}]})
    assert wrong_etag.status_code == 400
    assert client.post(f"{multi}/complete", json={"parts": "all"}).status_code == 422
    assert client.put(f"{multi}/0", content=b"x").status_code == 422
    assert client.put("/storage/uploads/nope", content=b"x").status_code == 404


def test_an_upload_url_expires_on_the_mock_clock(
    storage_client: TestClient, clock: ManualClock
) -> None:
    urls = _initiate(storage_client)
    clock.advance(3601)
    expired = storage_client.put(path_of(urls["upload_url"]), content=b"late")
    assert expired.status_code == 403 and "expired" in expired.json()["detail"]


def test_a_multipart_total_over_the_store_limit_is_refused(clock: ManualClock) -> None:
    store = UploadStore(clock, max_bytes=10)
    session = store.begin("t", "a/b", "f.bin", multipart=True)
    store.put_part(session.id, 1, b"x" * 6)
    with pytest.raises(Exception, match="allowed") as info:
        store.put_part(session.id, 2, b"x" * 6)
    assert type(info.value).__name__ == "UploadTooLarge"


def test_reset_forgets_upload_sessions(storage_client: TestClient, make_mock: MockFactory) -> None:
    mock: FalMock = storage_client.app.state.mock  # type: ignore[attr-defined]
    urls = _initiate(storage_client)
    mock.reset()
    assert storage_client.put(path_of(urls["upload_url"]), content=b"x").status_code == 404
