"""Recording against a `mockserver serve` upstream, then replaying offline."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image
from starlette.testclient import TestClient

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.cli import build_parser, config_from_args, main
from mockserver.client import ClientSettings, FalClient
from mockserver.client.protocol import AuthScheme
from mockserver.profiles import get_profile
from mockserver.recording import Recorder, RecordingStore, Redactor, create_recorder_app
from tests.e2e.server import ServerPool, serving_app

pytestmark = pytest.mark.e2e
KEY = "recording-secret-key-0123"
DEV_FILE = Path("models/fal-ai/flux-1/dev.yaml")


@dataclass
class Session:
    upstream: str
    proxy: str
    out: Path
    recorder: Recorder

    def client(self, profile: str) -> FalClient:
        scheme: AuthScheme = "Bearer" if profile == "intermediary" else "Key"
        return FalClient(ClientSettings(base_url=self.proxy, key=KEY, auth_scheme=scheme))

    def files(self) -> dict[Path, bytes]:
        return {p.relative_to(self.out): p.read_bytes() for p in self.out.rglob("*") if p.is_file()}


@contextlib.contextmanager
def recording(
    servers: ServerPool,
    out: Path,
    *server_args: str,
    redactor: Redactor | None = None,
    timeout: float = 30.0,
    auth_scheme: str | None = None,
) -> Iterator[Session]:
    upstream = servers.get("--instant", *server_args)
    store = RecordingStore(out, redactor or Redactor.build(), upstream)
    recorder = Recorder(upstream, store, timeout=timeout, auth_scheme=auth_scheme)
    with serving_app(create_recorder_app(recorder)) as proxy:
        yield Session(upstream, proxy, out, recorder)


def _replay(out: Path, profile: str = "official") -> TestClient:
    mock = FalMock(
        MockConfig(profile=get_profile(profile), contracts=(out,), instant=True),
        clock=ManualClock(),
    )
    return TestClient(create_app(mock), headers={"Authorization": f"Key {KEY}"})


@pytest.mark.parametrize("profile", ["official", "intermediary"])
def test_record_then_replay_offline(mock_servers: ServerPool, profile: str, tmp_path: Path) -> None:
    wanted = {
        "prompt": "a red fox",
        "num_images": 2,
        "seed": 5,
        "image_size": {"width": 512, "height": 384},
        "output_format": "png",
    }
    with (
        recording(mock_servers, tmp_path, "--profile", profile) as session,
        session.client(profile) as fal,
    ):
        output = fal.subscribe("fal-ai/flux-1/dev", wanted, with_logs=True)
        downloaded = [httpx.get(image["url"]).content for image in output["images"]]
        fal.subscribe("fal-ai/flux-1/schnell", {"prompt": "a blue fox"}, mode="streaming")
        status = httpx.get(f"{session.proxy}/_record/status").json()
    assert status["problems"] == [] and status["in_flight"] == 0
    # media downloads through the proxy are not protocol exchanges of some "endpoint"
    assert set(session.recorder.store.traits) == {"fal-ai/flux-1/dev", "fal-ai/flux-1/schnell"}
    assert len(status["written"]) == 2
    contract = yaml.safe_load((tmp_path / DEV_FILE).read_text())
    [example] = contract["examples"]
    assert example["input"] == wanted
    assert contract["recorded"]["auth_scheme"] == ("Bearer" if profile == "intermediary" else "Key")
    url_style = "queue.fal.run" if profile == "intermediary" else "own-origin"
    assert contract["recorded"]["url_style"] == url_style
    assert contract["recorded"]["status_codes"]["submit 200"] == 1
    assert contract["timing"]["queue_seconds"] >= 0 and contract["timing"]["run_seconds"] >= 0
    stored = [(tmp_path / DEV_FILE).parent / path for path in example["media"].values()]
    assert sorted(p.read_bytes() for p in stored) == sorted(downloaded)  # the bytes, kept
    # Nothing of the key anywhere on disk.
    assert all(KEY.encode() not in data for data in session.files().values())
    assert main(["contracts", "validate", str(tmp_path)]) == 0
    # `serve --contracts` takes the profile the recording saw.
    serve_args = build_parser().parse_args(["serve", "--contracts", str(tmp_path)])
    assert config_from_args(serve_args).profile.name == profile

    # Replay: the same input answers the recorded output and the recorded bytes.
    with _replay(tmp_path) as replay:
        queued = replay.post("/fal-ai/flux-1/dev", json=wanted).json()
        result = replay.get(f"/fal-ai/flux-1/requests/{queued['request_id']}").json()
        assert {k: v for k, v in result.items() if k != "images"} == {
            k: v for k, v in example["output"].items() if k != "images"
        }
        served = [replay.get(i["url"].replace("http://testserver", "")) for i in result["images"]]
        assert sorted(r.content for r in served) == sorted(downloaded)
        assert [r.headers["content-type"] for r in served] == ["image/png", "image/png"]
        with Image.open(io.BytesIO(served[0].content)) as image:
            assert image.size == (512, 384)
        # Another input falls back to the generated answer (no recorded bytes).
        other = replay.post("/fal-ai/flux-1/dev", json={"prompt": "x"}).json()
        generated = replay.get(f"/fal-ai/flux-1/requests/{other['request_id']}").json()
        assert "/files/recorded/" not in generated["images"][0]["url"]


def test_recording_again_merges_examples(mock_servers: ServerPool, tmp_path: Path) -> None:
    with recording(mock_servers, tmp_path) as session, session.client("official") as fal:
        fal.subscribe("fal-ai/flux-1/schnell", {"prompt": "one", "seed": 1})
        fal.subscribe("fal-ai/flux-1/schnell", {"prompt": "two", "seed": 2})
    with recording(mock_servers, tmp_path) as session, session.client("official") as fal:
        fal.subscribe("fal-ai/flux-1/schnell", {"prompt": "one", "seed": 1})  # seen before
    contract = yaml.safe_load((tmp_path / "models/fal-ai/flux-1/schnell.yaml").read_text())
    assert [e["input"]["prompt"] for e in contract["examples"]] == ["two", "one"]


def test_the_official_fal_client_records_unchanged(
    mock_servers: ServerPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fal_client
    import respx

    monkeypatch.setenv("FAL_KEY", KEY)
    with recording(mock_servers, tmp_path) as session:
        proxy = httpx.URL(session.proxy)

        def to_proxy(request: httpx.Request) -> httpx.Response:
            url = request.url.copy_with(scheme=proxy.scheme, host=proxy.host, port=proxy.port)
            with httpx.Client() as plain:
                answer = plain.send(
                    httpx.Request(
                        request.method, url, headers=request.headers, content=request.read()
                    )
                )
                return httpx.Response(
                    answer.status_code, headers=answer.headers, content=answer.content
                )

        with respx.mock(assert_all_called=False) as router:
            router.route(host="queue.fal.run").mock(side_effect=to_proxy)
            router.route().pass_through()
            result = fal_client.subscribe(
                "fal-ai/flux-1/schnell", arguments={"prompt": "via fal-client", "seed": 9}
            )
    contract = yaml.safe_load((tmp_path / "models/fal-ai/flux-1/schnell.yaml").read_text())
    [example] = contract["examples"]
    assert example["input"] == {"prompt": "via fal-client", "seed": 9}
    assert example["output"]["seed"] == result["seed"] == 9
    assert example["media"]


# -- what is not recorded ----------------------------------------------------------------


def _fault(upstream: str, **fault: Any) -> None:
    assert httpx.post(f"{upstream}/_mock/faults", json=fault).status_code == 200


def test_upstream_failures_pass_through_and_are_not_recorded(
    mock_servers: ServerPool, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Key {KEY}"}
    with recording(mock_servers, tmp_path, timeout=0.5) as session:
        submit = f"{session.proxy}/fal-ai/flux-1/dev"
        _fault(session.upstream, status_code=503, action="submit")
        failed = httpx.post(submit, json={"prompt": "x"}, headers=headers)
        assert failed.status_code == 503 and "Injected fault" in failed.json()["detail"]

        _fault(session.upstream, latency=2, action="submit")
        slow = httpx.post(submit, json={"prompt": "x"}, headers=headers, timeout=10)
        assert slow.status_code == 504 and "did not answer in time" in slow.json()["detail"]

        queued = httpx.post(submit, json={"prompt": "dropped"}, headers=headers).json()
        _fault(session.upstream, drop=True, action="result")
        result_url = f"{session.proxy}/fal-ai/flux-1/requests/{queued['request_id']}"
        dropped = httpx.get(result_url, headers=headers)
        assert dropped.status_code == 502

        cancelled = httpx.post(submit, json={"prompt": "cancelled"}, headers=headers).json()
        assert httpx.put(
            f"{session.proxy}/fal-ai/flux-1/requests/{cancelled['request_id']}/cancel",
            headers=headers,
        ).status_code in (202, 400)
        bad = httpx.post(submit, json={"num_images": 9}, headers=headers)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][0] == "body"
    assert not (tmp_path / "models").exists()  # nothing written for any of them


# -- scrubbing ---------------------------------------------------------------------------------


def test_secrets_are_scrubbed_before_anything_is_written(
    mock_servers: ServerPool, tmp_path: Path
) -> None:
    redactor = Redactor.build(fields=["prompt"], patterns=[r"cat-\d{4}"])
    with (
        recording(mock_servers, tmp_path, redactor=redactor) as session,
        session.client("official") as fal,
    ):
        fal.subscribe(
            "fal-ai/flux-1/dev/image-to-image",
            {
                "prompt": f"uses {KEY}",
                "image_url": "https://cdn.example/in.png?token=abc123&X-Amz-Signature=s1g&w=2",
                "seed": 3,
            },
        )
        fal.subscribe("fal-ai/flux-1/schnell", {"prompt": "p", "seed": 4, "acceleration": "none"})
    text = "\n".join(data.decode("utf-8", "replace") for data in session.files().values())
    assert KEY not in text and "abc123" not in text and "s1g" not in text
    contract = yaml.safe_load(
        (tmp_path / "models/fal-ai/flux-1/dev/image-to-image.yaml").read_text()
    )
    [example] = contract["examples"]
    assert example["input"]["prompt"] == "***"  # a field the user named
    assert example["input"]["image_url"] == (
        "https://cdn.example/in.png?token=***&X-Amz-Signature=***&w=2"
    )


def test_the_recorder_can_change_the_auth_scheme(mock_servers: ServerPool, tmp_path: Path) -> None:
    # fal-client always says "Key"; an intermediary wants "Bearer".
    args = ("--profile", "intermediary")
    with (
        recording(mock_servers, tmp_path, *args, auth_scheme="Bearer") as session,
        session.client(
            "official"  # sends "Key ..."
        ) as fal,
    ):
        fal.subscribe("fal-ai/flux-1/schnell", {"prompt": "scheme", "seed": 1})
    contract = yaml.safe_load((tmp_path / "models/fal-ai/flux-1/schnell.yaml").read_text())
    assert contract["recorded"]["auth_scheme"] == "Bearer"
    assert contract["examples"][0]["input"]["prompt"] == "scheme"


def test_status_streams_pass_through_pointing_at_the_proxy(
    mock_servers: ServerPool, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Key {KEY}"}
    with recording(mock_servers, tmp_path) as session:
        queued = httpx.post(
            f"{session.proxy}/fal-ai/flux-1/schnell", json={"prompt": "s"}, headers=headers
        ).json()
        assert queued["status_url"].startswith(session.proxy)  # rewritten onto the proxy
        stream = httpx.get(f"{queued['status_url']}/stream", headers=headers)
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert '"status":"COMPLETED"' in stream.text
        assert session.upstream not in stream.text and session.proxy in stream.text
