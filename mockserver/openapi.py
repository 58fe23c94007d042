"""The protocol's OpenAPI document, with a submit path per catalog model."""

from __future__ import annotations

import copy
import weakref
from functools import cache
from typing import Any

from mockserver.catalog import Catalog
from mockserver.contracts import load_data_file, protocol_dir
from mockserver.http import flag_pattern
from mockserver.webhooks import WEBHOOK_URL_MAX_LENGTH, WEBHOOK_URL_PATTERN

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
    # The query parameters' patterns come from the code that applies them, so
    # the document cannot say something else than the server does.
    doc["components"]["parameters"]["Logs"]["schema"]["pattern"] = flag_pattern()
    webhook = {
        "name": "fal_webhook",
        "in": "query",
        "required": False,
        "description": "Where the result is delivered (signed) when the request ends",
        "schema": {
            "type": "string",
            "pattern": WEBHOOK_URL_PATTERN,
            "maxLength": WEBHOOK_URL_MAX_LENGTH,
        },
    }
    queued = {"$ref": "#/components/schemas/QueueStatus"}
    for model in catalog:
        name = "Input_" + model.endpoint_id.replace("/", "_").replace("-", "_")
        doc["components"]["schemas"][name] = model.input_schema
        doc["components"]["schemas"]["Output_" + name[6:]] = model.output_schema
        doc["paths"]["/" + model.endpoint_id] = {
            "post": {
                "summary": f"Submit to {model.endpoint_id}: {model.title}",
                "parameters": [webhook],
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
                    "401": {"$ref": "#/components/responses/Unauthorized"},
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
