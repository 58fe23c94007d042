"""`mockserver contracts import`: fal's documents in either form, quirks, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mockserver.catalog import Catalog, load_contract
from mockserver.cli import main
from mockserver.fal_import import DocumentError, import_file, write_contracts
from mockserver.synthesis import MEDIA_KEY
from tests.catalog import documents


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _keys(value: Any) -> set[str]:
    """Every mapping key anywhere in `value` except the names under `properties`."""
    if isinstance(value, list):
        return {k for item in value for k in _keys(item)}
    if not isinstance(value, dict):
        return set()
    found = set(value)
    for key, sub in value.items():
        if key == "properties" and isinstance(sub, dict):
            found |= {k for prop in sub.values() for k in _keys(prop)}
        else:
            found |= _keys(sub)
    return found


def test_the_queue_document_becomes_a_served_contract(tmp_path: Path) -> None:
    source = _write(tmp_path / "painter.json", documents.text_to_image())
    (item,) = import_file(source)
    contract = item.contract
    assert item.endpoint_id == "acme/painter/v2"
    assert contract["output"] == "synthesized" and contract["category"] == "text-to-image"
    assert contract["media_fields"] == [{"path": "images[]", "kind": "image"}]
    keys = _keys(contract["input_schema"]) | _keys(contract["output_schema"])
    assert not {k for k in keys if k.startswith(("x-fal", "_fal"))} and "ui" not in keys
    assert "$ref" not in keys
    prompt = contract["input_schema"]["properties"]["prompt"]
    assert prompt["description"] == "What to paint." and prompt["examples"] == [
        "a lighthouse at dawn"
    ]
    assert contract["examples"][0]["input"] == {"prompt": "a lighthouse at dawn"}
    image = contract["output_schema"]["properties"]["images"]["items"]
    assert image[MEDIA_KEY] == "image" and image["required"] == ["url"]
    assert contract["timing"] == {"queue_seconds": 1.0, "run_seconds": 2.0}
    assert contract["logs"]
    written = write_contracts([item], tmp_path / "out")
    model = load_contract(written[0])  # strict: meta-schema and examples checked
    assert model.validate({"prompt": "x", "guidance_scale": 0})[0].to_json() == {
        "loc": ["body", "guidance_scale"],
        "msg": "Input should be greater than 0",
        "type": "greater_than",
    }


def test_the_models_api_answer_form_is_imported(tmp_path: Path) -> None:
    answer = {
        "models": [
            {
                "endpoint_id": "acme/voice/tts",
                "metadata": {"display_name": "Acme Voice", "category": "text-to-speech"},
                "openapi": documents.text_to_speech(),
            },
            {"endpoint_id": "acme/sharpen/upscale", "openapi": documents.upscaler()},
        ],
        "has_more": False,
    }
    imported = import_file(_write(tmp_path / "models.json", answer))
    assert [i.endpoint_id for i in imported] == ["acme/voice/tts", "acme/sharpen/upscale"]
    assert imported[0].contract["title"] == "Acme Voice"
    assert imported[0].contract["media_fields"] == [{"path": "audio", "kind": "audio"}]


def test_openapi_3_0_spellings_become_json_schema(tmp_path: Path) -> None:
    doc = documents.upscaler()
    schema = doc["components"]["schemas"]["SharpenUpscaleInput"]
    schema["properties"]["upscale_factor"] = {
        "type": "number",
        "minimum": 1,
        "exclusiveMinimum": True,
        "maximum": 4,
        "example": 2,
    }
    schema["properties"]["note"] = {"type": "string", "nullable": True, "x-fal-hint": 1}
    (item,) = import_file(_write(tmp_path / "up.json", doc))
    props = item.contract["input_schema"]["properties"]
    assert props["upscale_factor"] == {
        "type": "number",
        "exclusiveMinimum": 1,
        "maximum": 4,
        "examples": [2],
    }
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}


def test_a_recursive_schema_is_cut_at_the_cycle(tmp_path: Path) -> None:
    doc = documents.upscaler()
    doc["components"]["schemas"]["Node"] = {
        "type": "object",
        "properties": {
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
        },
    }
    doc["components"]["schemas"]["SharpenUpscaleInput"]["properties"]["tree"] = {
        "$ref": "#/components/schemas/Node"
    }
    (item,) = import_file(_write(tmp_path / "tree.json", doc))
    tree = item.contract["input_schema"]["properties"]["tree"]
    assert tree["properties"]["children"]["items"] == {"description": "(recursive Node)"}


def _broken(change: Any) -> dict[str, Any]:
    doc = documents.text_to_image()
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "place"),
    [
        (lambda d: d.update(openapi=2), ": openapi: expected an OpenAPI 3.x"),
        (lambda d: d["components"].pop("schemas"), ": components.schemas: missing"),
        (
            lambda d: d["paths"].pop("/acme/painter/v2/requests/{request_id}"),
            ": paths: no 'GET /{endpoint id}/requests/{request_id}' operation",
        ),
        (
            lambda d: d["components"]["schemas"]["PainterV2Output"]["properties"]["images"][
                "items"
            ].update({"$ref": "#/components/schemas/Nope"}),
            ": components.schemas.PainterV2Output.properties.images.items.$ref:"
            " '#/components/schemas/Nope' names no schema",
        ),
        (
            lambda d: d["components"]["schemas"]["PainterV2Input"]["properties"].update(
                num_images={"type": "integer", "minimum": "one"}
            ),
            ": input_schema.properties.num_images.minimum: 'one' is not of type 'number'",
        ),
        (
            lambda d: d["components"]["schemas"]["PainterV2Input"]["properties"].update(
                prompt=["not", "a", "schema"]
            ),
            ": components.schemas.PainterV2Input.properties.prompt: a schema is an object",
        ),
    ],
)
def test_bad_documents_are_refused_naming_file_and_place(
    tmp_path: Path, change: Any, place: str
) -> None:
    source = _write(tmp_path / "bad.json", _broken(change))
    with pytest.raises(DocumentError) as info:
        import_file(source)
    assert str(info.value).startswith(f"{source}{place}"), str(info.value)


def test_not_a_document_at_all(tmp_path: Path) -> None:
    source = tmp_path / "notes.yaml"
    source.write_text("just: a mapping\n")
    with pytest.raises(DocumentError, match=r"notes\.yaml: \(top level\): not a fal OpenAPI"):
        import_file(source)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DocumentError, match=r"broken\.json: not valid JSON"):
        import_file(tmp_path / "broken.json")


def test_the_cli_imports_replaces_and_serves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _write(tmp_path / "painter.json", documents.text_to_image())
    out = tmp_path / "contracts"
    stale = out / "acme" / "painter" / "v2.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text(yaml.safe_dump({"endpoint_id": "acme/painter/v2"}))
    assert main(["contracts", "import", str(source), "--out", str(out)]) == 0
    assert "acme/painter/v2 -> " in capsys.readouterr().out
    assert not stale.exists()  # re-import replaces: one file per endpoint
    doc = documents.text_to_image()
    doc["components"]["schemas"]["PainterV2Input"]["properties"]["num_images"]["maximum"] = 2
    _write(source, doc)
    assert main(["contracts", "import", str(source), "--out", str(out)]) == 0
    model = Catalog.load(out, builtin=False).get("acme/painter/v2")
    assert model is not None
    assert model.validate({"prompt": "x", "num_images": 3})[0].loc == ("num_images",)
    assert main(["contracts", "show", "acme/painter/v2", "--contracts", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "num_images" in shown and "1..2" in shown and "images[] (image)" in shown


def test_the_cli_names_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(tmp_path / "bad.json", {"openapi": "3.0.4"})
    assert main(["contracts", "import", str(source), "--out", str(tmp_path / "o")]) == 1
    assert f"{source}: components.schemas: missing" in capsys.readouterr().err
    assert main(["contracts", "import", "no/such/file.json", "--out", str(tmp_path)]) == 1


def test_list_groups_by_category_and_show_prints_a_shipped_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["contracts", "list"]) == 0
    listed = capsys.readouterr().out
    for category in ("text-to-image", "text-to-video", "speech-to-text", "llm", "image-to-3d"):
        assert category in listed
    assert "FLUX.1 [dev]" in listed  # markup-like titles shown as written
    assert main(["contracts", "show", "fal-ai/wizper"]) == 0
    shown = capsys.readouterr().out
    assert "audio_url" in shown and "chunks" in shown and "retrieved 2026-11-25" in shown
    assert main(["contracts", "show", "fal-ai/nope"]) == 1
