"""The protocol's OpenAPI document, with a submit path per catalog model."""

from __future__ import annotations

import copy
import weakref
from functools import cache
from typing import Any

from mockserver.catalog import Catalog
from mockserver.contracts import load_data_file, protocol_dir

_documents: weakref.WeakKeyDictionary[Catalog, dict[str, Any]] = weakref.WeakKeyDictionary()


@cache
def _protocol() -> dict[str, Any]:
    data = load_data_file(protocol_dir() / "openapi.yaml")
    assert isinstance(data, dict)
    return data


def document(catalog: Catalog) -> dict[str, Any]:
    """The OpenAPI document for a catalog (built once per catalog)."""
    if catalog not in _documents:
        _documents[catalog] = _build(catalog)
    return _documents[catalog]


def _build(catalog: Catalog) -> dict[str, Any]:
    doc = copy.deepcopy(_protocol())
    queued = {"$ref": "#/components/schemas/QueueStatus"}
    for model in catalog:
        name = "Input_" + model.endpoint_id.replace("/", "_").replace("-", "_")
        doc["components"]["schemas"][name] = model.input_schema
        doc["components"]["schemas"]["Output_" + name[6:]] = model.output_schema
        doc["paths"]["/" + model.endpoint_id] = {
            "post": {
                "summary": f"Submit to {model.endpoint_id}: {model.title}",
                "parameters": [
                    {
                        "name": "fal_webhook",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "Queued",
                        "content": {"application/json": {"schema": queued}},
                    },
                    "401": {"description": "Missing or invalid key"},
                    "422": {
                        "description": "Invalid input",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ValidationError"}
                            }
                        },
                    },
                },
            }
        }
    return doc
