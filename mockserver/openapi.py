"""The protocol's OpenAPI document, with a submit path per catalog model."""

from __future__ import annotations

import copy
import weakref
from functools import cache
from typing import Any

from mockserver.catalog import Catalog
from mockserver.contracts import load_data_file, protocol_dir
from mockserver.http import flag_pattern
from mockserver.proxy import PROXY_PATHS, TARGET_URL_MAX_LENGTH, TARGET_URL_PATTERN
from mockserver.tokens import DEFAULT_EXPIRATION, MAX_EXPIRATION
from mockserver.webhooks import WEBHOOK_URL_MAX_LENGTH, WEBHOOK_URL_PATTERN

# Where the mock serves fal.run (`app.RUN_PREFIX`; app imports this module).
_RUN_PREFIX = "/_run/"
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
    token = doc["paths"]["/tokens/"]["post"]["requestBody"]["content"]["application/json"]
    expiration = token["schema"]["properties"]["token_expiration"]
    expiration.update(maximum=MAX_EXPIRATION, default=DEFAULT_EXPIRATION)
    for path in PROXY_PATHS:
        [target] = doc["paths"][path]["parameters"]
        target["schema"] = {
            "type": "string",
            "pattern": TARGET_URL_PATTERN,
            "maxLength": TARGET_URL_MAX_LENGTH,
        }
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
    invalid = {
        "description": "Invalid input",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ValidationError"}}
        },
    }
    for model in catalog:
        name = "Input_" + model.endpoint_id.replace("/", "_").replace("-", "_")
        doc["components"]["schemas"][name] = model.input_schema
        doc["components"]["schemas"]["Output_" + name[6:]] = model.output_schema
        # The same input for the queue submit and the run host's stream.
        body = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
        doc["paths"]["/" + model.endpoint_id] = {
            "post": {
                "summary": f"Submit to {model.endpoint_id}: {model.title}",
                "parameters": [webhook],
                "requestBody": body,
                "responses": {
                    "200": {
                        "description": "Queued",
                        "content": {"application/json": {"schema": queued}},
                    },
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "422": invalid,
                },
            }
        }
        # fal.run's stream of partial outputs (the mock's fal.run is /_run).
        doc["paths"][f"{_RUN_PREFIX}{model.endpoint_id}/stream"] = {
            "post": {
                "summary": f"Run {model.endpoint_id} and stream its partial outputs, the last"
                " event the full output (fal.run's /stream)",
                "requestBody": body,
                "responses": {
                    "200": {
                        "description": "An event stream; each event's data a JSON partial"
                        " output, the last one the full output",
                        "content": {"text/event-stream": {"schema": {"type": "object"}}},
                    },
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "422": invalid,
                },
            }
        }
    return doc
