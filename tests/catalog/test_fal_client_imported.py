"""Imported fal documents served to the official fal-client, end to end (in process)."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import fal_client
import httpx
import jsonschema
import pytest
from PIL import Image

from mockserver.catalog import Catalog
from mockserver.fal_import import import_file, write_contracts
from mockserver.testing import InProcessFal, MockOptions
from tests.catalog import documents


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four test documents, imported with `mockserver contracts import`'s code."""
    sources = tmp_path_factory.mktemp("documents")
    out = tmp_path_factory.mktemp("contracts")
    for name in ("text_to_image", "text_to_video", "text_to_speech", "upscaler"):
        path = sources / f"{name}.json"
        path.write_text(json.dumps(getattr(documents, name)()), encoding="utf-8")
        write_contracts(import_file(path), out)
    return out


@pytest.fixture
def fal(imported: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessFal]:
    options = MockOptions(contracts=(imported,))
    monkeypatch.setenv("FAL_KEY", options.key)
    mock = InProcessFal(options).start()
    try:
        yield mock
    finally:
        mock.stop()


def _run(endpoint: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Submit, poll until completed, fetch the result: the client's own flow."""
    handle = fal_client.submit(endpoint, arguments=arguments)
    for _ in handle.iter_events(with_logs=True, interval=0):
        pass
    result = handle.get()
    assert isinstance(result, dict)
    return result


def _schema(imported: Path, endpoint: str) -> dict[str, Any]:
    model = Catalog.load(imported, builtin=False).get(endpoint)
    assert model is not None
    return model.output_schema


def _download(item: dict[str, Any]) -> bytes:
    answer = httpx.get(item["url"])
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(item["content_type"])
    data = answer.content
    if "file_size" in item:
        assert item["file_size"] == len(data)
    return data


def test_text_to_image(fal: InProcessFal, imported: Path) -> None:
    result = _run(
        "acme/painter/v2",
        {
            "prompt": "a fox",
            "image_size": "landscape_16_9",
            "num_images": 2,
            "seed": 7,
            "output_format": "png",
        },
    )
    jsonschema.validate(result, _schema(imported, "acme/painter/v2"))
    assert result["seed"] == 7 and result["prompt"] == "a fox"
    assert len(result["images"]) == 2 and result["has_nsfw_concepts"] == [False, False]
    for item in result["images"]:
        picture = Image.open(io.BytesIO(_download(item)))
        assert picture.format == "PNG" and picture.size == (1024, 576)
        assert (item["width"], item["height"]) == (1024, 576)
    fal.assert_nothing_unexpected()


def test_text_to_video(fal: InProcessFal, imported: Path) -> None:
    result = _run(
        "acme/motion/text-to-video",
        {
            "prompt": "waves",
            "duration": "2",
            "aspect_ratio": "9:16",
            "resolution": "240p",
            "fps": 10,
        },
    )
    jsonschema.validate(result, _schema(imported, "acme/motion/text-to-video"))
    video = result["video"]
    assert video["content_type"] == "video/mp4" and video["file_name"].endswith(".mp4")
    with av.open(io.BytesIO(_download(video)), "r") as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (240, 426)
        assert stream.average_rate == 10
        assert len(list(container.decode(video=0))) == 20  # 2 s at 10 fps


def test_text_to_speech(fal: InProcessFal, imported: Path) -> None:
    result = _run("acme/voice/tts", {"text": "Hello there, this is the mock speaking."})
    jsonschema.validate(result, _schema(imported, "acme/voice/tts"))
    audio = result["audio"]
    with wave.open(io.BytesIO(_download(audio))) as sound:
        seconds = sound.getnframes() / sound.getframerate()
    assert audio["content_type"] == "audio/wav"
    assert seconds == pytest.approx(audio["duration"], abs=0.01) and seconds > 1


def test_upscaler(fal: InProcessFal, imported: Path) -> None:
    result = _run(
        "acme/sharpen/upscale",
        {"image_url": "https://v3.fal.media/files/x/in.png", "upscale_factor": 1.5},
    )
    jsonschema.validate(result, _schema(imported, "acme/sharpen/upscale"))
    picture = Image.open(io.BytesIO(_download(result["image"])))
    assert picture.size == (result["image"]["width"], result["image"]["height"]) == (768, 768)


@pytest.mark.parametrize(
    ("endpoint", "arguments", "field"),
    [
        ("acme/painter/v2", {"prompt": "x", "num_images": 9}, "num_images"),
        ("acme/painter/v2", {"prompt": "x", "image_size": "huge"}, "image_size"),
        ("acme/motion/text-to-video", {"prompt": "x", "duration": "9"}, "duration"),
        ("acme/voice/tts", {"voice": "Aria"}, "text"),
        ("acme/sharpen/upscale", {"image_url": "u", "upscale_factor": 8}, "upscale_factor"),
    ],
)
def test_invalid_input_is_a_422_naming_the_field(
    fal: InProcessFal, endpoint: str, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(fal_client.client.FalClientHTTPError) as info:
        fal_client.submit(endpoint, arguments=arguments)
    assert info.value.status_code == 422
    detail = json.loads(info.value.response.text)["detail"]
    assert [entry["loc"] for entry in detail] == [["body", field]]
