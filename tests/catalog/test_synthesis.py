"""Outputs for any output schema: shapes, what the input decides, real media bytes."""

from __future__ import annotations

import io
import json
import wave
import zipfile
from typing import Any

import av
import jsonschema
import pytest
from PIL import Image

from mockserver.media import MediaSpec, media_size, render
from mockserver.synthesis import MEDIA_KEY, pixel_size, synthesize

URL = {"type": "string"}
FILE: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": URL,
        "content_type": {"anyOf": [URL, {"type": "null"}]},
        "file_name": {"anyOf": [URL, {"type": "null"}]},
        "file_size": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
    },
}
IMAGE = {
    **FILE,
    MEDIA_KEY: "image",
    "properties": {
        **FILE["properties"],
        "width": {"type": "integer"},
        "height": {"type": "integer"},
    },
}


class Sink:
    """Records the files and gives their true sizes."""

    def __init__(self) -> None:
        self.files: dict[str, MediaSpec] = {}

    def url(self, spec: MediaSpec) -> str:
        url = f"http://mock/files/{len(self.files)}/{spec.file_name}"
        self.files[url] = spec
        return url

    def size(self, spec: MediaSpec) -> int:
        return media_size(spec)


def _output(schema: dict[str, Any], data: dict[str, Any], seed: int = 1) -> tuple[Any, Sink]:
    sink = Sink()
    output = synthesize(schema, data, seed, sink, run_seconds=2.5)
    jsonschema.validate(output, schema)
    return output, sink


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties}


def test_images_follow_count_size_format_and_seed() -> None:
    schema = _object(
        images={"type": "array", "items": IMAGE},
        seed={"type": "integer"},
        prompt=URL,
        timings={"type": "object"},
        has_nsfw_concepts={"type": "array", "items": {"type": "boolean"}},
    )
    schema["properties"] = {"has_nsfw_concepts": schema["properties"].pop("has_nsfw_concepts")} | (
        schema["properties"]
    )  # flags listed before the images they describe
    data = {"prompt": "a cat", "num_images": 3, "image_size": {"width": 320, "height": 200}}
    output, sink = _output(schema, {**data, "output_format": "webp"}, seed=9)
    assert output["seed"] == 9 and output["prompt"] == "a cat"
    assert output["timings"] == {"inference": 2.5}
    assert output["has_nsfw_concepts"] == [False] * 3
    assert list(output) == list(schema["properties"])
    for item in output["images"]:
        data_bytes = render(sink.files[item["url"]])
        picture = Image.open(io.BytesIO(data_bytes))
        assert picture.format == "WEBP" and picture.size == (320, 200)
        assert item["content_type"] == "image/webp" and "file_size" not in item  # as fal's
        assert (item["width"], item["height"]) == (320, 200)
    assert len({render(spec) for spec in sink.files.values()}) == 3  # distinct per index
    again, _ = _output(schema, {**data, "output_format": "webp"}, seed=9)
    assert [i["width"] for i in again["images"]] == [i["width"] for i in output["images"]]
    required = {**IMAGE, "required": ["url", "file_size", "file_name"]}
    output, sink = _output(_object(image=required), {})
    assert output["image"]["file_size"] == len(render(sink.files[output["image"]["url"]]))
    assert output["image"]["file_name"] == "image_0.png"


@pytest.mark.parametrize(
    ("data", "size"),
    [
        ({"image_size": "portrait_16_9"}, (576, 1024)),
        ({"width": 640, "height": 480}, (640, 480)),
        ({"aspect_ratio": "16:9"}, (1360, 768)),
        ({"aspect_ratio": "9:16", "resolution": "720p"}, (720, 1280)),
        ({"aspect_ratio": "1:1", "resolution": "2K"}, (2048, 2048)),
        ({"resolution": "512x768"}, (512, 768)),
        ({"upscale_factor": 3}, (1536, 1536)),
        ({"image_size": {"width": 99999, "height": 10}}, (4096, 10)),
        ({}, (1024, 1024)),
    ],
)
def test_pixel_size_from_the_input(data: dict[str, Any], size: tuple[int, int]) -> None:
    assert pixel_size(data, (1024, 1024), video=False) == size


def test_an_allof_wrapped_video_has_the_duration_size_and_rate_asked_for() -> None:
    schema = _object(video={"allOf": [FILE], "description": "the clip", MEDIA_KEY: "video"})
    data = {"duration": "3s", "aspect_ratio": "16:9", "resolution": "360p", "fps": 12}
    output, sink = _output(schema, data)
    video = output["video"]
    assert video["content_type"] == "video/mp4" and video["file_name"] == "output.mp4"
    data_bytes = render(sink.files[video["url"]])
    assert video["file_size"] == len(data_bytes)
    with av.open(io.BytesIO(data_bytes), "r") as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (640, 360)
        assert stream.average_rate == 12
        frames = list(container.decode(video=0))
    assert len(frames) == 36 and frames[-1].time == pytest.approx(35 / 12)


def test_video_frames_come_from_num_frames_and_frames_per_second() -> None:
    schema = _object(video=FILE)  # kind from the field's name (a bare File)
    output, sink = _output(schema, {"num_frames": 20, "frames_per_second": 10})
    spec = sink.files[output["video"]["url"]]
    assert (spec.kind, spec.fps, spec.duration, spec.frames) == ("video", 10, 2.0, 20)


def test_speech_is_a_wav_as_long_as_the_output_says() -> None:
    audio = {**FILE, "properties": {**FILE["properties"], "duration": {"type": "number"}}}
    audio["required"] = ["url", "duration"]
    output, sink = _output(_object(audio=audio), {"text": "x" * 45})
    with wave.open(io.BytesIO(render(sink.files[output["audio"]["url"]]))) as sound:
        seconds = sound.getnframes() / sound.getframerate()
    assert output["audio"]["duration"] == 3.0 and seconds == pytest.approx(3.0)
    output, _ = _output(_object(audio_file=FILE), {"seconds_total": 7})
    assert output["audio_file"]["content_type"] == "audio/wav"


def test_a_3d_model_is_a_valid_glb_and_archives_are_zips() -> None:
    output, sink = _output(_object(model_mesh=FILE, archive=FILE), {})
    glb = render(sink.files[output["model_mesh"]["url"]])
    magic, version, length = glb[:4], int.from_bytes(glb[4:8], "little"), glb[8:12]
    assert (magic, version, int.from_bytes(length, "little")) == (b"glTF", 2, len(glb))
    chunk = int.from_bytes(glb[12:16], "little")
    document = json.loads(glb[20 : 20 + chunk])
    assert document["asset"]["version"] == "2.0" and document["meshes"]
    assert output["model_mesh"]["content_type"] == "model/gltf-binary"
    archive = render(sink.files[output["archive"]["url"]])
    assert zipfile.ZipFile(io.BytesIO(archive)).namelist() == ["README.txt"]


def test_text_echoes_the_input_and_values_stay_within_the_schema() -> None:
    schema = _object(
        output=URL,
        text=URL,
        score={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        steps={"type": "integer", "minimum": 3, "maximum": 5},
        mode={"enum": ["fast", "slow"]},
        language={"type": "string", "enum": ["en", "de"]},
        name={"type": "string", "minLength": 50},
    )
    schema["properties"]["error"] = {"anyOf": [URL, {"type": "null"}]}
    output, sink = _output(schema, {"prompt": "why?", "language": "de"})
    assert output["output"] == "Mock answer to: why?" and output["language"] == "de"
    assert output["error"] is None and sink.files == {}
    output, _ = _output(_object(text=URL), {"audio_url": "https://x/a.mp3"})
    assert output["text"] == "Mock transcription of https://x/a.mp3"


def test_outputs_are_deterministic_per_input_and_seed() -> None:
    schema = _object(value={"type": "number"}, label=URL)
    first, _ = _output(schema, {"prompt": "a"}, seed=3)
    assert _output(schema, {"prompt": "a"}, seed=3)[0] == first
    assert {_output(schema, {"prompt": "a"}, seed=s)[0]["value"] for s in range(5)} != {
        first["value"]
    }
