"""Contracts from fal's per-endpoint OpenAPI documents (`mockserver contracts import`).

fal publishes one queue OpenAPI 3.0 document per endpoint, alone or as the
`openapi` member of its models API answers. This module turns one into a
``synthesized`` contract: the input and output schemas with every `$ref`
inlined and fal's habits normalized (OpenAPI's `nullable` and boolean
`exclusiveMinimum`, singular `example`, vendor keys such as `x-fal-*`,
`_fal_ui_field` and `ui` anywhere), media schemas marked with their kind, and
timing, logs and an example taken from the document.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from mockserver.contracts import load_data_file
from mockserver.endpoints import EndpointId, InvalidEndpointId
from mockserver.media import MediaSpec, media_size
from mockserver.synthesis import MEDIA_KEY, flatten, media_kind, synthesize

# fal's media component schemas, by name, and the kind of file each holds.
MEDIA_COMPONENTS: dict[str, str] = {
    "File": "file",
    "Image": "image",
    "ImageFile": "image",
    "VideoFile": "video",
    "Video": "video",
    "AudioFile": "audio",
    "Audio": "audio",
}
# Seconds in the queue and running, by fal category (others: the first entry).
TIMING: dict[str, tuple[float, float]] = {
    "": (1.0, 2.0),
    "text-to-image": (1.0, 2.0),
    "image-to-image": (1.0, 2.0),
    "text-to-video": (2.0, 8.0),
    "image-to-video": (2.0, 8.0),
    "video-to-video": (2.0, 8.0),
    "text-to-speech": (0.5, 2.0),
    "speech-to-text": (0.5, 2.0),
    "text-to-audio": (1.0, 4.0),
    "llm": (0.5, 1.5),
    "image-to-3d": (2.0, 6.0),
}
LOGS = [
    {"at": 0.0, "level": "INFO", "message": "Loading model"},
    {"at": 0.3, "level": "INFO", "message": "Running inference"},
    {"at": 1.0, "level": "INFO", "message": "Uploading result"},
]
# Keywords whose value is one schema, a list of schemas, or a map of schemas.
_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else")
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
# OpenAPI-only keywords with no meaning for validation.
_DROPPED = frozenset({"ui", "discriminator", "xml", "externalDocs", "readOnly", "writeOnly"})


class DocumentError(ValueError):
    """A document cannot be imported; the message names the file and the place."""


@dataclass(frozen=True)
class Imported:
    """One endpoint's contract built from a document."""

    endpoint_id: str
    contract: dict[str, Any]

    def relative_path(self) -> Path:
        """Where the contract goes inside an output directory."""
        *folders, last = self.endpoint_id.split("/")
        return Path(*folders, f"{last}.json")  # ids may hold dots (v1.1-ultra)


def import_file(path: Path, *, today: dt.date | None = None) -> list[Imported]:
    """Every endpoint of the document(s) in `path`; `DocumentError` names the place."""
    try:
        data = load_data_file(path)
    except ValueError as exc:
        raise DocumentError(str(exc)) from exc
    return import_data(data, path, today=today)


def import_data(data: Any, path: Path, *, today: dt.date | None = None) -> list[Imported]:
    """`import_file` for a document already parsed (`path` names it in errors)."""
    found = list(_documents(data, ""))
    if not found:
        raise DocumentError(
            f"{path}: (top level): not a fal OpenAPI document: expected 'openapi: 3.x'"
            " or a models-API answer with an 'openapi' member"
        )
    day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    return [
        Imported(contract["endpoint_id"], contract)
        for contract in (
            _contract(doc, meta, _Where(path, where), day) for doc, meta, where in found
        )
    ]


def write_contracts(imported: list[Imported], out: Path) -> list[Path]:
    """Write each contract under `out` (replacing an earlier import of the endpoint)."""
    written = []
    for item in imported:
        target = out / item.relative_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        stem = target.name.removesuffix(".json")
        for stale in (target.with_name(f"{stem}.yaml"), target.with_name(f"{stem}.yml")):
            stale.unlink(missing_ok=True)  # one file per endpoint: a re-import replaces
        target.write_text(json.dumps(item.contract, indent=1) + "\n", encoding="utf-8")
        written.append(target)
    return written


@dataclass(frozen=True)
class _Where:
    path: Path
    base: str

    def at(self, *parts: str | int) -> str:
        place = ".".join(str(p) for p in (self.base, *parts) if p != "")
        return f"{self.path}: {place or '(top level)'}"


def _documents(data: Any, where: str) -> Iterator[tuple[dict[str, Any], dict[str, Any], str]]:
    """(OpenAPI document, models-API metadata, place) for each endpoint in `data`."""
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield from _documents(item, f"{where}[{i}]")
        return
    if not isinstance(data, dict):
        return
    if "openapi" in data and not isinstance(data["openapi"], dict):
        yield data, {}, where  # the version is checked with the rest
    elif isinstance(data.get("openapi"), dict):
        meta = dict(data.get("metadata") or {})
        if isinstance(data.get("endpoint_id"), str):
            meta.setdefault("endpoint_id", data["endpoint_id"])
        yield data["openapi"], meta, f"{where}.openapi".lstrip(".")
    elif isinstance(data.get("models"), list):
        yield from _documents(data["models"], f"{where}.models".lstrip("."))


def _contract(doc: dict[str, Any], meta: dict[str, Any], where: _Where, day: str) -> dict[str, Any]:
    version = doc.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        raise DocumentError(f"{where.at('openapi')}: expected an OpenAPI 3.x version string")
    info = _mapping(doc.get("info"))
    fal_meta = _mapping(info.get("x-fal-metadata"))
    components = (doc.get("components") or {}).get("schemas")
    if not isinstance(components, dict):
        raise DocumentError(f"{where.at('components', 'schemas')}: missing (the model's schemas)")
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise DocumentError(f"{where.at('paths')}: missing")
    submit_path, input_ref = _submit(paths, where)
    result_path, output_ref = _result(paths, where)
    raw_id = fal_meta.get("endpointId") or meta.get("endpoint_id") or submit_path.strip("/")
    try:
        endpoint_id = str(EndpointId.parse(str(raw_id)))
    except InvalidEndpointId as exc:
        raise DocumentError(f"{where.at('info', 'x-fal-metadata', 'endpointId')}: {exc}") from exc
    resolver = _Resolver(components, where)
    input_schema = resolver.schema(input_ref, ("paths", submit_path, "post", "requestBody"))
    output_schema = resolver.schema(output_ref, ("paths", result_path, "get", "responses", "200"))
    for name, schema in (("input", input_schema), ("output", output_schema)):
        if _type(schema) != "object":
            raise DocumentError(f"{where.at(name)}: the {name} schema is not an object schema")
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            place = ".".join(str(p) for p in exc.absolute_path)
            raise DocumentError(f"{where.at(name + '_schema', place)}: {exc.message}") from exc
    category = str(fal_meta.get("category") or meta.get("category") or "")
    example_input = _example_input(input_schema)
    example_output = _example_output(output_schema, input_schema, example_input, where)
    queue_s, run_s = TIMING.get(category, TIMING[""])
    source: dict[str, Any] = {"document": where.path.name, "imported": day}
    declared = info.get("x-source")
    if isinstance(declared, dict):
        known = ("url", "retrieved", "note", "document")
        source.update({k: str(v) for k, v in declared.items() if k in known})
    elif isinstance(fal_meta.get("documentationUrl"), str):
        source["url"] = fal_meta["documentationUrl"]
    media = list(media_fields(output_schema))
    contract: dict[str, Any] = {
        "endpoint_id": endpoint_id,
        "title": _title(meta, info, endpoint_id),
        "output": "synthesized",
        "size_from": _size_from(input_schema, media),
        "category": category,
        "source": source,
        "timing": {"queue_seconds": queue_s, "run_seconds": run_s},
        "logs": LOGS,
        "media_fields": media,
        "input_schema": input_schema,
        "output_schema": output_schema,
        "examples": [{"input": example_input, "output": example_output}],
    }
    description = meta.get("description") or info.get("description")
    if isinstance(description, str) and description.strip():
        contract["description"] = description.strip()
    return contract


def _size_from(input_schema: dict[str, Any], media: list[dict[str, str]]) -> str:
    """Which input sets the pixel size of an image model's pictures (what live
    checks compare with the answer)."""
    if not any(m["kind"] == "image" for m in media):
        return "none"
    properties = input_schema.get("properties") or {}
    for name in ("image_size", "aspect_ratio"):
        if name in properties:
            return name
    return "none"


def _title(meta: dict[str, Any], info: dict[str, Any], endpoint_id: str) -> str:
    title = meta.get("display_name") or info.get("title")
    if not isinstance(title, str) or title.startswith("Queue OpenAPI for"):
        return endpoint_id  # the queue document's title names only the protocol
    return title


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _submit(paths: dict[str, Any], where: _Where) -> tuple[str, Any]:
    for path, item in paths.items():
        post = item.get("post") if isinstance(item, dict) else None
        if "/requests/" in path or not isinstance(post, dict):
            continue
        body = post.get("requestBody")
        schema = _json_schema(body)
        if schema is None:
            raise DocumentError(
                f"{where.at('paths', path, 'post', 'requestBody')}: no application/json schema"
            )
        return path, schema
    raise DocumentError(f"{where.at('paths')}: no 'POST /{{endpoint id}}' operation (the submit)")


def _result(paths: dict[str, Any], where: _Where) -> tuple[str, Any]:
    for path, item in paths.items():
        get = item.get("get") if isinstance(item, dict) else None
        if not path.rstrip("/").endswith("/requests/{request_id}") or not isinstance(get, dict):
            continue
        answer = (get.get("responses") or {}).get("200")
        schema = _json_schema(answer)
        if schema is None:
            raise DocumentError(
                f"{where.at('paths', path, 'get', 'responses', '200')}: no application/json schema"
            )
        return path, schema
    raise DocumentError(
        f"{where.at('paths')}: no 'GET /{{endpoint id}}/requests/{{request_id}}' operation"
        " (the result and its output schema)"
    )


def _json_schema(holder: Any) -> Any:
    if not isinstance(holder, dict):
        return None
    content = holder.get("content")
    if not isinstance(content, dict):
        return None
    media = content.get("application/json")
    return media.get("schema") if isinstance(media, dict) else None


class _Resolver:
    """Inlines `#/components/schemas/X` references and normalizes fal's habits."""

    def __init__(self, components: dict[str, Any], where: _Where) -> None:
        self._components = components
        self._where = where

    def schema(self, raw: Any, place: tuple[str, ...]) -> dict[str, Any]:
        result = self._walk(raw, place, ())
        if not isinstance(result, dict):
            raise DocumentError(f"{self._where.at(*place)}: a schema is an object")
        return result

    def _walk(self, raw: Any, place: tuple[str | int, ...], stack: tuple[str, ...]) -> Any:
        if isinstance(raw, bool):
            return raw
        if not isinstance(raw, dict):
            raise DocumentError(
                f"{self._where.at(*place)}: a schema is an object, got {type(raw).__name__}"
            )
        result: dict[str, Any] = {}
        ref = raw.get("$ref")
        if ref is not None:
            name = self._ref_name(ref, place)
            if name in stack:
                # A recursive type: stop here and accept any value at this depth.
                base: dict[str, Any] = {"description": f"(recursive {name})"}
            else:
                target = self._components[name]
                base = self._walk(target, ("components", "schemas", name), (*stack, name))
                if name in MEDIA_COMPONENTS and isinstance(base, dict):
                    base[MEDIA_KEY] = MEDIA_COMPONENTS[name]
            result.update(base)
        for key, value in raw.items():
            if key == "$ref" or _vendor(key):
                continue
            here = (*place, key)
            if key in _ONE:
                result[key] = self._walk(value, here, stack)
            elif key in _MANY:
                if not isinstance(value, list):
                    raise DocumentError(f"{self._where.at(*here)}: expected a list of schemas")
                result[key] = [self._walk(v, (*here, i), stack) for i, v in enumerate(value)]
            elif key in _MAP:
                if not isinstance(value, dict):
                    raise DocumentError(f"{self._where.at(*here)}: expected a map of schemas")
                result[key] = {k: self._walk(v, (*here, k), stack) for k, v in value.items()}
            elif key == "description" and isinstance(value, str):
                result[key] = value.strip()
            elif key == "examples" and not isinstance(value, list):
                result[key] = [value]
            elif key == "example":
                result.setdefault("examples", [value])
            else:
                result[key] = value
        return _openapi_to_json_schema(result)

    def _ref_name(self, ref: Any, place: tuple[str | int, ...]) -> str:
        prefix = "#/components/schemas/"
        if not isinstance(ref, str) or not ref.startswith(prefix):
            raise DocumentError(
                f"{self._where.at(*place, '$ref')}: {ref!r} is not a '{prefix}<Name>' reference"
            )
        name = ref[len(prefix) :]
        if name not in self._components:
            raise DocumentError(
                f"{self._where.at(*place, '$ref')}: {ref!r} names no schema in components.schemas"
            )
        return name


def _vendor(key: str) -> bool:
    return key.startswith(("x-", "_fal")) or key in _DROPPED


def _openapi_to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0 spellings as JSON Schema 2020-12 (fal mixes both)."""
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if schema.get(exclusive) is True and bound in schema:
            schema[exclusive] = schema.pop(bound)
        elif isinstance(schema.get(exclusive), bool):
            del schema[exclusive]
    if schema.pop("nullable", False) is True:
        kept = {k: v for k, v in schema.items() if k in ("title", "description", "default")}
        inner = {k: v for k, v in schema.items() if k not in kept}
        return {**kept, "anyOf": [inner, {"type": "null"}]}
    return schema


def _type(schema: dict[str, Any]) -> str | None:
    kind = flatten(schema).get("type")
    if kind is None and "properties" in flatten(schema):
        return "object"
    return kind if isinstance(kind, str) else None


def media_fields(schema: Any, path: str = "") -> Iterator[dict[str, str]]:
    """Where the media files of an output are: ``{"path": "images[]", "kind": "image"}``."""
    flat = flatten(schema)
    kind = media_kind(flat, path.rsplit(".", 1)[-1].removesuffix("[]"))
    if kind is not None:
        yield {"path": path or "(top level)", "kind": kind}
        return
    for name, prop in (flat.get("properties") or {}).items():
        yield from media_fields(prop, f"{path}.{name}".lstrip("."))
    if isinstance(flat.get("items"), dict):
        yield from media_fields(flat["items"], f"{path}[]")


def _example_input(schema: dict[str, Any]) -> dict[str, Any]:
    """The document's example input: each field's first example (required fields
    always), falling back to required fields only, then to a synthesized input."""
    validator = Draft202012Validator(schema)
    properties = schema.get("properties") or {}
    required = list(schema.get("required", []))
    full: dict[str, Any] = {}
    for name, prop in properties.items():
        examples = prop.get("examples") if isinstance(prop, dict) else None
        if isinstance(examples, list) and examples:
            full[name] = examples[0]
        elif name in required and isinstance(prop, dict) and "default" in prop:
            full[name] = prop["default"]
    minimal = {k: v for k, v in full.items() if k in required}
    for candidate in (full, minimal):
        if validator.is_valid(candidate):
            return candidate
    built = synthesize(schema, {}, 0, _ExampleMedia())
    return built if isinstance(built, dict) else {}


class _ExampleMedia:
    """Media of a contract's example output: URLs on fal's CDN, true sizes."""

    def url(self, spec: MediaSpec) -> str:
        return f"https://v3.fal.media/files/example/{spec.file_name}"

    def size(self, spec: MediaSpec) -> int:
        return media_size(spec)


def _example_output(
    output_schema: dict[str, Any],
    input_schema: dict[str, Any],
    example_input: dict[str, Any],
    where: _Where,
) -> Any:
    data = dict(example_input)
    for name, prop in (input_schema.get("properties") or {}).items():
        if name not in data and isinstance(prop, dict) and "default" in prop:
            data[name] = prop["default"]
    output = synthesize(output_schema, data, 42, _ExampleMedia())
    problems = list(Draft202012Validator(output_schema).iter_errors(output))
    if problems:
        first = problems[0]
        place = ".".join(str(p) for p in first.absolute_path)
        raise DocumentError(
            f"{where.at('output_schema', place)}: the mock cannot build an output this schema"
            f" accepts ({first.message})"
        )
    return output
