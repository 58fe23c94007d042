"""The queue protocol over HTTP, in process (TestClient), on a manual clock."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image
from starlette.testclient import TestClient

from mockserver import FalMock, ManualClock, create_app
from tests.conftest import AUTH, DEV, MockFactory, path_of, submit


def test_submit_answers_like_fal(client: TestClient) -> None:
    response = client.post(f"/{DEV}", json={"prompt": "a cat"})
    assert response.status_code == 200
    body = response.json()
    request_id = body["request_id"]
    assert uuid.UUID(request_id).version == 4
    assert body == {
        "status": "IN_QUEUE",
        "request_id": request_id,
        "gateway_request_id": request_id,
        "response_url": f"http://testserver/fal-ai/flux-1/requests/{request_id}",
        "status_url": f"http://testserver/fal-ai/flux-1/requests/{request_id}/status",
        "cancel_url": f"http://testserver/fal-ai/flux-1/requests/{request_id}/cancel",
        "queue_position": 0,
    }


def test_full_lifecycle_status_codes_logs_and_metrics(
    client: TestClient, clock: ManualClock
) -> None:
    queued = submit(client)
    status_path = path_of(queued["status_url"])

    first = client.get(status_path)
    assert first.status_code == 202
    assert first.json()["status"] == "IN_QUEUE" and first.json()["queue_position"] == 0

    clock.advance(1.5)  # dev: 1 s in queue, then 1 s of run
    running = client.get(status_path, params={"logs": "1"})
    assert running.status_code == 202
    body = running.json()
    assert body["status"] == "IN_PROGRESS"
    assert [entry["message"] for entry in body["logs"]] == [
        "Loading model weights",
        "Running inference",
    ]
    assert set(body["logs"][0]) == {"message", "level", "source", "timestamp"}
    assert body["logs"][0]["timestamp"] == "2026-01-01T00:00:01Z"
    without_logs = client.get(status_path).json()
    assert "logs" in without_logs and without_logs["logs"] is None

    clock.advance(1)
    done = client.get(status_path, params={"logs": "true"})
    assert done.status_code == 200
    body = done.json()
    assert body["status"] == "COMPLETED"
    assert len(body["logs"]) == 4  # cumulative
    assert body["metrics"] == {"inference_time": 1.0}
    assert "error" not in body
    for key in ("request_id", "response_url", "status_url", "cancel_url"):
        assert key in body


@pytest.mark.parametrize(
    ("value", "expects_logs"),
    [("1", True), ("true", True), ("0", False), ("false", False), (None, False)],
)
def test_logs_parameter_forms(
    client: TestClient, clock: ManualClock, value: str | None, expects_logs: bool
) -> None:
    queued = submit(client)
    clock.advance(1.5)
    params = {} if value is None else {"logs": value}
    body = client.get(path_of(queued["status_url"]), params=params).json()
    assert (body["logs"] is not None) == expects_logs


def test_result_before_completion_then_after(client: TestClient, clock: ManualClock) -> None:
    queued = submit(client, num_images=2, seed=42, image_size="square", output_format="png")
    result_path = path_of(queued["response_url"])
    early = client.get(result_path)
    assert early.status_code == 400
    assert "detail" in early.json()
    clock.advance(2)
    done = client.get(result_path)
    assert done.status_code == 200
    assert done.headers["x-fal-request-id"] == queued["request_id"]
    output = done.json()
    assert output["seed"] == 42
    assert output["prompt"] == "a cat"
    assert output["has_nsfw_concepts"] == [False, False]
    assert output["timings"] == {"inference": 1.0}
    assert [(i["width"], i["height"], i["content_type"]) for i in output["images"]] == [
        (512, 512, "image/png")
    ] * 2


def test_media_are_real_files_of_the_reported_size(client: TestClient, clock: ManualClock) -> None:
    queued = submit(client, image_size={"width": 300, "height": 200})
    clock.advance(2)
    image = client.get(path_of(queued["response_url"])).json()["images"][0]
    media = client.get(path_of(image["url"]), headers={"Authorization": ""})  # no auth needed
    assert media.status_code == 200
    assert media.headers["content-type"] == "image/jpeg"
    decoded = Image.open(io.BytesIO(media.content))
    assert decoded.format == "JPEG" and decoded.size == (300, 200)
    assert client.get(path_of(image["url"])).content == media.content  # deterministic


def test_random_seed_is_reported_and_media_expire_with_the_result(
    client: TestClient, clock: ManualClock
) -> None:
    queued = submit(client)
    clock.advance(2)
    output = client.get(path_of(queued["response_url"])).json()
    assert isinstance(output["seed"], int)
    url = path_of(output["images"][0]["url"])
    clock.advance(3600)
    assert client.get(path_of(queued["response_url"])).status_code == 404
    assert client.get(path_of(queued["status_url"])).status_code == 404
    gone = client.get(url)
    assert gone.status_code == 404 and "detail" in gone.json()


def test_video_model(client: TestClient, clock: ManualClock) -> None:
    queued = submit(client, "fal-ai/example-video/text-to-video", prompt="a lion")
    clock.advance(10)
    video = client.get(path_of(queued["response_url"])).json()["video"]
    assert video["content_type"] == "video/mp4" and video["file_name"] == "output.mp4"
    data = client.get(path_of(video["url"])).content
    assert len(data) == video["file_size"] and data[4:8] == b"ftyp"


@pytest.mark.parametrize(
    ("endpoint", "payload", "size"),
    [
        (
            "fal-ai/flux-pro/kontext",
            {"image_url": "https://x/y.png", "aspect_ratio": "21:9"},
            (1568, 672),
        ),
        (
            "fal-ai/flux-pro/kontext/max/multi",
            {"image_urls": ["https://x/y.png"], "aspect_ratio": "9:16"},
            (752, 1392),
        ),
        ("fal-ai/flux-1/schnell", {"image_size": "landscape_16_9"}, (1024, 576)),
        ("fal-ai/flux-1/dev/redux", {"image_url": "https://x/y.png"}, (1024, 768)),
    ],
)
def test_every_kind_of_size(
    client: TestClient,
    clock: ManualClock,
    endpoint: str,
    payload: dict[str, object],
    size: tuple[int, int],
) -> None:
    queued = submit(client, endpoint, **payload)
    clock.advance(10)
    image = client.get(path_of(queued["response_url"])).json()["images"][0]
    assert (image["width"], image["height"]) == size
    assert Image.open(io.BytesIO(client.get(path_of(image["url"])).content)).size == size


def test_trailing_slashes_are_tolerated(client: TestClient, clock: ManualClock) -> None:
    queued = submit(client)
    assert client.get(path_of(queued["status_url"]) + "/").status_code == 202
    assert client.get(path_of(queued["response_url"]) + "/").status_code == 400
    assert client.put(path_of(queued["cancel_url"]) + "/").status_code == 202
    assert client.post(f"/{DEV}/", json={"prompt": "x"}).status_code == 200


def test_cancel_queued_running_completed_and_unknown(
    client: TestClient, clock: ManualClock
) -> None:
    first = submit(client)
    second = submit(client)
    assert second["queue_position"] == 1  # one runner by default: first is ahead
    cancelled = client.put(path_of(second["cancel_url"]))
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "CANCELLATION_REQUESTED"
    assert client.get(path_of(second["status_url"])).json()["status"] == "COMPLETED"
    assert client.get(path_of(second["response_url"])).status_code == 499

    clock.advance(1.5)  # first is running now
    assert client.put(path_of(first["cancel_url"])).status_code == 202
    assert client.get(path_of(first["response_url"])).status_code == 499

    third = submit(client)
    clock.advance(5)
    again = client.put(path_of(third["cancel_url"]))
    assert again.status_code == 400 and again.json()["status"] == "ALREADY_COMPLETED"
    missing = client.put(f"/fal-ai/flux-1/requests/{uuid.uuid4()}/cancel")
    assert missing.status_code == 404 and missing.json()["status"] == "NOT_FOUND"


def test_unknown_request_ids(client: TestClient) -> None:
    unknown = uuid.uuid4()
    for path in (f"/fal-ai/flux-1/requests/{unknown}", f"/fal-ai/flux-1/requests/{unknown}/status"):
        response = client.get(path)
        assert response.status_code == 404 and "detail" in response.json()


def test_request_urls_must_name_the_right_app(client: TestClient) -> None:
    queued = submit(client)
    wrong_app = f"/fal-ai/flux-pro/requests/{queued['request_id']}/status"
    assert client.get(wrong_app).status_code == 404


def test_queue_positions_never_increase(client: TestClient, clock: ManualClock) -> None:
    handles = [submit(client) for _ in range(4)]
    assert [h["queue_position"] for h in handles] == [0, 1, 2, 3]
    previous = [h["queue_position"] for h in handles]
    for _ in range(10):
        clock.advance(0.5)
        current = []
        for handle, before in zip(handles, previous, strict=True):
            body = client.get(path_of(handle["status_url"])).json()
            position = body.get("queue_position", 0)
            assert position <= before
            current.append(position)
        previous = current


def test_priority_header_low_goes_after_normal(client: TestClient, clock: ManualClock) -> None:
    submit(client)  # takes the runner after 1 s
    low = client.post(
        f"/{DEV}", json={"prompt": "x"}, headers={"X-Fal-Queue-Priority": "low"}
    ).json()
    normal = submit(client)
    clock.advance(2.5)
    assert client.get(path_of(normal["status_url"])).json()["status"] == "IN_PROGRESS"
    assert client.get(path_of(low["status_url"])).json()["status"] == "IN_QUEUE"


def test_x_fal_headers_and_webhook_are_accepted_and_recorded(
    client: TestClient, mock: FalMock
) -> None:
    headers = {
        "X-Fal-Queue-Priority": "normal",
        "X-Fal-Runner-Hint": "runner-7",
        "X-Fal-Request-Timeout": "30.0",
        "X-Fal-Store-IO": "0",
        "X-Fal-No-Retry": "1",
        "X-Fal-Object-Lifecycle-Preference": '{"expiration_duration_seconds": 60}',
    }
    response = client.post(
        f"/{DEV}?fal_webhook=https://example.test/hook", json={"prompt": "x"}, headers=headers
    )
    assert response.status_code == 200
    job = mock.engine.get(response.json()["request_id"])
    assert job is not None
    summary = mock.job_summary(job)
    assert summary["webhook"] == "https://example.test/hook"
    assert summary["headers"]["x-fal-runner-hint"] == "runner-7"
    recorded = mock.requests[-1]
    assert recorded.action == "submit" and recorded.request_id == job.id
    assert recorded.headers["x-fal-no-retry"] == "1"
    assert recorded.query["fal_webhook"] == "https://example.test/hook"


def test_request_timeout_header_is_a_start_deadline(client: TestClient, clock: ManualClock) -> None:
    client.post(f"/{DEV}", json={"prompt": "keeps the runner busy"})
    queued = client.post(
        f"/{DEV}", json={"prompt": "x"}, headers={"X-Fal-Request-Timeout": "1.5"}
    ).json()
    clock.advance(1.5)
    status = client.get(path_of(queued["status_url"])).json()
    assert status["status"] == "COMPLETED" and status["error_type"] == "request_timeout"
    result = client.get(path_of(queued["response_url"]))
    assert result.status_code == 504 and result.headers["x-fal-error-type"] == "request_timeout"
    assert result.headers["x-fal-request-timeout-type"] == "user"
    assert result.headers["x-fal-request-id"] == queued["request_id"]


@pytest.mark.parametrize(
    ("endpoint", "request_base"),
    [
        ("workflows/fal-ai/wf/x", "/workflows/fal-ai/wf/requests/"),
        ("123-my-app", "/123/my-app/requests/"),
        ("123/my-app/sub", "/123/my-app/requests/"),
    ],
)
def test_namespaces_and_one_segment_ids(
    tmp_path: object, make_mock: MockFactory, endpoint: str, request_base: str
) -> None:
    from pathlib import Path

    import yaml

    from mockserver.contracts import builtin_contracts_dir

    source = builtin_contracts_dir() / "models" / "fal-ai" / "flux-1" / "schnell.yaml"
    data = yaml.safe_load(source.read_text())
    directory = Path(str(tmp_path))
    data["endpoint_id"] = endpoint
    (directory / "custom.yaml").write_text(yaml.safe_dump(data))
    from mockserver import Catalog, FalMock, MockConfig

    mock = FalMock(MockConfig(instant=True), clock=ManualClock(), catalog=Catalog.load(directory))
    with TestClient(create_app(mock), headers=AUTH) as client:
        queued = client.post(f"/{endpoint}", json={"prompt": "x"}).json()
        assert path_of(queued["status_url"]) == f"{request_base}{queued['request_id']}/status"
        assert client.get(path_of(queued["status_url"])).status_code == 200
        assert client.get(path_of(queued["response_url"])).status_code == 200


def test_synchronous_run_by_prefix_and_by_host(client: TestClient) -> None:
    by_prefix = client.post(f"/_run/{DEV}", json={"prompt": "sync", "num_images": 3})
    assert by_prefix.status_code == 200
    assert len(by_prefix.json()["images"]) == 3 and by_prefix.json()["prompt"] == "sync"
    by_host = client.post(f"/{DEV}", json={"prompt": "sync"}, headers={"Host": "fal.run"})
    assert by_host.status_code == 200 and "images" in by_host.json()
    invalid = client.post(f"/_run/{DEV}", json={})
    assert invalid.status_code == 422


def test_x_forwarded_headers_and_public_url(make_mock: MockFactory) -> None:
    with TestClient(create_app(make_mock()), headers=AUTH) as client:
        body = client.post(
            f"/{DEV}",
            json={"prompt": "x"},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mock.example:8443"},
        ).json()
        assert body["status_url"].startswith("https://mock.example:8443/fal-ai/flux-1/requests/")
    with TestClient(
        create_app(make_mock(public_url="https://fixed.example/")), headers=AUTH
    ) as client:
        body = client.post(f"/{DEV}", json={"prompt": "x"}).json()
        assert body["response_url"].startswith("https://fixed.example/fal-ai/flux-1/requests/")


def test_status_answers_are_stable_for_concurrent_clients(
    client: TestClient, clock: ManualClock
) -> None:
    handles = [submit(client, prompt=f"p{i}") for i in range(5)]
    clock.advance(20)
    prompts = {client.get(path_of(h["response_url"])).json()["prompt"] for h in handles}
    assert prompts == {f"p{i}" for i in range(5)}


def test_finished_status_answers_follow_each_caller_origin_and_logs_flag(
    client: TestClient, clock: ManualClock
) -> None:
    # Finished jobs' status answers are cached: the cache must still answer
    # each origin with its own URLs, and with or without logs as asked.
    queued = submit(client)
    clock.advance(20)
    path = path_of(queued["status_url"])
    for _ in range(2):
        plain = client.get(path).json()
        assert plain["status"] == "COMPLETED" and plain["logs"] is None
        assert plain["status_url"].startswith("http://testserver/")
        logged = client.get(path, params={"logs": 1}).json()
        assert logged["logs"] and all("timestamp" in line for line in logged["logs"])
        other = client.get(path, headers={"X-Forwarded-Host": "other.example"}).json()
        assert other["status_url"].startswith("http://other.example/")
        assert {k: v for k, v in other.items() if not k.endswith("_url")} == {
            k: v for k, v in plain.items() if not k.endswith("_url")
        }
