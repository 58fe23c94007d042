"""The shipped catalog: built from its sources, every model's output synthesized and valid."""

from __future__ import annotations

import io
import json
import wave
import zipfile
from pathlib import Path
from typing import Any

import av
import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mockserver.app import create_app
from mockserver.catalog import Catalog, Model, contract_files, load_contract
from mockserver.catalog_build import build, sources_dir
from mockserver.clock import ManualClock
from mockserver.contracts import builtin_contracts_dir
from mockserver.fal_import import media_fields
from mockserver.media import MediaSpec
from mockserver.mock import FalMock, MockConfig
from mockserver.transport import SyncAppTransport
from tests.catalog.strategies import values_for

CATALOG = Catalog.load()
SYNTHESIZED = [m for m in CATALOG if m.output == "synthesized"]
POPULAR = [
    "fal-ai/flux/dev",
    "fal-ai/flux/schnell",
    "fal-ai/flux-pro/v1.1-ultra",
    "fal-ai/fast-sdxl",
    "fal-ai/recraft-v3",
    "fal-ai/ideogram/v2",
    "fal-ai/kling-video/v3/pro/text-to-video",
    "fal-ai/minimax/video-01",
    "fal-ai/luma-dream-machine",
    "fal-ai/veo3",
    "fal-ai/wan-t2v",
    "fal-ai/whisper",
    "fal-ai/wizper",
    "fal-ai/kokoro/american-english",
    "fal-ai/any-llm",
    "fal-ai/clarity-upscaler",
    "fal-ai/birefnet",
    "fal-ai/trellis-2",
    "fal-ai/stable-audio",
]


def test_at_least_thirty_popular_endpoints_across_modalities_ship() -> None:
    ids = {m.endpoint_id for m in SYNTHESIZED}
    assert len(ids) >= 30
    assert set(POPULAR) <= ids
    categories = {m.category for m in SYNTHESIZED}
    assert {
        "text-to-image",
        "image-to-image",
        "text-to-video",
        "image-to-video",
        "speech-to-text",
        "text-to-speech",
        "text-to-audio",
        "llm",
        "image-to-3d",
    } <= categories


KINDS = {
    "text-to-image": "image",
    "image-to-image": "image",
    "text-to-video": "video",
    "image-to-video": "video",
    "video-to-video": "video",
    "text-to-speech": "audio",
    "text-to-audio": "audio",
    "image-to-3d": "model",
}


@pytest.mark.parametrize("model", SYNTHESIZED, ids=lambda m: m.endpoint_id)
def test_each_model_answers_files_of_its_modality(model: Model) -> None:
    kinds = {field["kind"] for field in media_fields(model.output_schema)}
    if model.category in KINDS:
        assert KINDS[model.category] in kinds
    else:  # language and speech-to-text models answer text
        assert kinds == set()


def test_every_shipped_contract_passes_the_strict_checks() -> None:
    # Loading skips the meta-schema and example checks for shipped contracts
    # (start-up speed); this is where they are made.
    for path in contract_files(builtin_contracts_dir()):
        load_contract(path, strict=True)


def test_each_catalog_contract_records_its_source_and_date() -> None:
    for model in SYNTHESIZED:
        assert model.origin["url"].startswith("https://")
        assert model.origin["retrieved"] == "2026-11-25"
        assert model.origin["document"].startswith("sources/")


def test_the_shipped_contracts_are_what_the_sources_build(tmp_path: Path) -> None:
    for item in build(sources_dir()):
        shipped = builtin_contracts_dir() / "models" / item.relative_path()
        assert json.loads(shipped.read_text()) == item.contract, (
            f"{shipped} is stale: run `make catalog`"
        )


class _Sizes:
    """A media sink that never builds bytes (the schema test needs only shapes)."""

    def __init__(self) -> None:
        self.specs: list[MediaSpec] = []

    def url(self, spec: MediaSpec) -> str:
        self.specs.append(spec)
        return f"http://127.0.0.1/files/x/{len(self.specs)}"

    def size(self, spec: MediaSpec) -> int:
        return spec.width * spec.height + spec.index + 1


def _inputs(model: Model) -> st.SearchStrategy[dict[str, Any]]:
    return values_for(model.input_schema).map(model.with_defaults)


@pytest.mark.parametrize("model", SYNTHESIZED, ids=lambda m: m.endpoint_id)
def test_synthesized_outputs_validate_for_generated_inputs(model: Model) -> None:
    validator = jsonschema.Draft202012Validator(model.output_schema)

    @settings(
        max_examples=6,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(data=_inputs(model), seed=st.integers(0, 2**32 - 1))
    def check(data: dict[str, Any], seed: int) -> None:
        assert model.validate(data) == []
        sink = _Sizes()
        output = model.synthesize(data, seed, sink, 1.5)
        errors = [e.message for e in validator.iter_errors(output)]
        assert errors == [], errors
        again = model.synthesize(data, seed, _Sizes(), 1.5)
        assert again == output  # deterministic per (input, seed)
        for spec in sink.specs:
            assert spec.width <= 4096 and spec.height <= 4096 and spec.duration <= 120

    check()


def _decode(content_type: str, data: bytes) -> dict[str, Any]:
    """What the bytes really are."""
    if content_type.startswith("image/"):
        picture = Image.open(io.BytesIO(data))
        return {"format": picture.format, "size": picture.size}
    if content_type == "video/mp4":
        with av.open(io.BytesIO(data), "r") as container:
            stream = container.streams.video[0]
            return {"size": (stream.width, stream.height), "frames": stream.frames}
    if content_type == "audio/wav":
        with wave.open(io.BytesIO(data)) as sound:
            return {"seconds": sound.getnframes() / sound.getframerate()}
    if content_type == "model/gltf-binary":
        assert data[:4] == b"glTF" and int.from_bytes(data[8:12], "little") == len(data)
        return {"glb": True}
    if content_type == "application/zip":
        return {"names": zipfile.ZipFile(io.BytesIO(data)).namelist()}
    return {"bytes": len(data)}


@pytest.fixture(scope="module")
def served() -> httpx.Client:
    mock = FalMock(MockConfig(instant=True), clock=ManualClock(), catalog=CATALOG)
    transport = SyncAppTransport(create_app(mock))
    return httpx.Client(transport=transport, base_url="http://127.0.0.1:8000")


@pytest.mark.parametrize("model", SYNTHESIZED, ids=lambda m: m.endpoint_id)
def test_each_model_serves_its_example_with_real_media(served: httpx.Client, model: Model) -> None:
    headers = {"Authorization": "Key k"}
    submitted = served.post(
        f"/{model.endpoint_id}", json=model.examples[0]["input"], headers=headers
    )
    assert submitted.status_code == 200, submitted.text
    result = served.get(submitted.json()["response_url"], headers=headers)
    assert result.status_code == 200
    output = result.json()
    jsonschema.validate(output, model.output_schema)
    files = 0
    for item in _media_items(output):
        files += 1
        download = served.get(item["url"])
        assert download.status_code == 200
        assert download.headers["content-type"].startswith(item["content_type"])
        if "file_size" in item:
            assert item["file_size"] == len(download.content)
        facts = _decode(item["content_type"], download.content)
        if "width" in item and "size" in facts:
            assert facts["size"] == (item["width"], item["height"])
    assert files or any(isinstance(v, str) for v in output.values())


def _media_items(output: Any) -> list[dict[str, Any]]:
    if isinstance(output, dict):
        if isinstance(output.get("url"), str) and "content_type" in output:
            return [output]
        return [m for v in output.values() for m in _media_items(v)]
    if isinstance(output, list):
        return [m for v in output for m in _media_items(v)]
    return []
