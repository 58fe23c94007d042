"""fal's queue OpenAPI document of an endpoint, built from its input and output schemas.

The shape is the one fal serves at ``fal.ai/api/openapi/queue/openapi.json
?endpoint_id=<id>``: the four queue operations, `QueueStatus`, the
`apiKeyAuth` scheme, `<Pascal>Input`/`<Pascal>Output` component schemas and
fal's media components. The shipped catalog is written as compact sources
(``contracts/sources``) expanded by `document` and imported like any fal
document; tests use it to write documents in fal's format.
"""

from __future__ import annotations

import copy
import re
from typing import Any

_FILE_PROPERTIES: dict[str, Any] = {
    "url": {"type": "string", "title": "Url", "description": "Where to download the file."},
    "content_type": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "title": "Content Type",
        "description": "MIME type of the file.",
        "examples": ["image/png"],
    },
    "file_name": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "title": "File Name",
        "description": "Name of the file.",
        "examples": ["z9RV14K95DvU.png"],
    },
    "file_size": {
        "anyOf": [{"type": "integer"}, {"type": "null"}],
        "title": "File Size",
        "description": "Size of the file in bytes.",
        "examples": [4404019],
    },
    "file_data": {
        "anyOf": [{"type": "string", "format": "binary"}, {"type": "null"}],
        "title": "File Data",
        "description": "Inline bytes of the file.",
    },
}
_DIMENSIONS: dict[str, Any] = {
    "width": {
        "anyOf": [{"type": "integer"}, {"type": "null"}],
        "title": "Width",
        "description": "Width in pixels.",
        "examples": [1024],
    },
    "height": {
        "anyOf": [{"type": "integer"}, {"type": "null"}],
        "title": "Height",
        "description": "Height in pixels.",
        "examples": [1024],
    },
}

MEDIA_SCHEMAS: dict[str, Any] = {
    "File": {
        "title": "File",
        "type": "object",
        "properties": _FILE_PROPERTIES,
        "x-fal-order-properties": ["url", "content_type", "file_name", "file_size", "file_data"],
        "required": ["url"],
    },
    "Image": {
        "title": "Image",
        "type": "object",
        "description": "An image file.",
        "properties": {**_FILE_PROPERTIES, **_DIMENSIONS},
        "x-fal-order-properties": [
            "url",
            "content_type",
            "file_name",
            "file_size",
            "width",
            "height",
        ],
        "required": ["url"],
    },
    "VideoFile": {
        "title": "VideoFile",
        "type": "object",
        "properties": _FILE_PROPERTIES,
        "required": ["url"],
    },
    "AudioFile": {
        "title": "AudioFile",
        "type": "object",
        "properties": {
            **_FILE_PROPERTIES,
            "duration": {
                "type": "number",
                "title": "Duration",
                "description": "Length in seconds.",
            },
        },
        "required": ["url"],
    },
    "ImageSize": {
        "title": "ImageSize",
        "type": "object",
        "properties": {
            "width": {
                "type": "integer",
                "title": "Width",
                "description": "Width of the image to make.",
                "default": 512,
                "exclusiveMinimum": 0,
                "maximum": 14142,
            },
            "height": {
                "type": "integer",
                "title": "Height",
                "description": "Height of the image to make.",
                "default": 512,
                "exclusiveMinimum": 0,
                "maximum": 14142,
            },
        },
        "x-fal-order-properties": ["width", "height"],
    },
}


def pascal(endpoint_id: str) -> str:
    """fal's component name stem of an endpoint: ``fal-ai/flux/dev`` -> ``FluxDev``."""
    parts = endpoint_id.split("/")
    words = re.split(r"[^0-9A-Za-z]+", " ".join(parts[1:] if len(parts) > 1 else parts))
    return "".join(w[:1].upper() + w[1:] for w in words if w)


def document(
    endpoint_id: str,
    *,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
    category: str = "",
    components: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """fal's queue OpenAPI document for `endpoint_id` with these schemas.

    The schemas may refer to `#/components/schemas/<Name>` for fal's media
    types (`File`, `Image`, `VideoFile`, `AudioFile`, `ImageSize`) and for any
    of `components`.
    """
    stem = pascal(endpoint_id)
    schemas: dict[str, Any] = {
        "QueueStatus": _QUEUE_STATUS,
        f"{stem}Input": {"title": f"{stem}Input", "type": "object", **input_schema},
        f"{stem}Output": {"title": f"{stem}Output", "type": "object", **output_schema},
        **MEDIA_SCHEMAS,
        **(components or {}),
    }
    request = f"/{endpoint_id}/requests/{{request_id}}"
    request_id = {
        "name": "request_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "description": "Request ID"},
    }
    status = _json(200, "The request status.", {"$ref": "#/components/schemas/QueueStatus"})
    return copy.deepcopy(
        {
            "openapi": "3.0.4",
            "info": {
                "title": f"Queue OpenAPI for {endpoint_id}",
                "version": "1.0.0",
                "description": f"The OpenAPI schema for the {endpoint_id} queue.",
                "x-fal-metadata": {
                    "endpointId": endpoint_id,
                    "category": category,
                    "playgroundUrl": f"https://fal.ai/models/{endpoint_id}",
                    "documentationUrl": f"https://fal.ai/models/{endpoint_id}/api",
                },
                **(info or {}),
            },
            "components": {
                "securitySchemes": {
                    "apiKeyAuth": {
                        "type": "apiKey",
                        "in": "header",
                        "name": "Authorization",
                        "description": "Fal Key",
                    }
                },
                "schemas": schemas,
            },
            "paths": {
                f"{request}/status": {
                    "get": {
                        "parameters": [
                            request_id,
                            {
                                "name": "logs",
                                "in": "query",
                                "required": False,
                                "schema": {
                                    "type": "number",
                                    "description": _LOGS_PARAMETER,
                                },
                            },
                        ],
                        "responses": {"200": status},
                    }
                },
                f"{request}/cancel": {
                    "put": {
                        "parameters": [request_id],
                        "responses": {
                            "200": _json(
                                200,
                                "The request was cancelled.",
                                {
                                    "type": "object",
                                    "properties": {
                                        "success": {
                                            "type": "boolean",
                                            "description": "True when the request was cancelled.",
                                        }
                                    },
                                },
                            )
                        },
                    }
                },
                f"/{endpoint_id}": {
                    "post": {
                        "requestBody": {
                            "required": True,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": f"#/components/schemas/{stem}Input"}
                                }
                            },
                        },
                        "responses": {"200": status},
                    }
                },
                request: {
                    "get": {
                        "parameters": [request_id],
                        "responses": {
                            "200": _json(
                                200,
                                "Result of the request.",
                                {"$ref": f"#/components/schemas/{stem}Output"},
                            )
                        },
                    }
                },
            },
            "servers": [{"url": "https://queue.fal.run"}],
            "security": [{"apiKeyAuth": []}],
        }
    )


def _json(status: int, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    del status
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_LOGS_PARAMETER = "1: include the logs in the answer; 0: leave them out."
_QUEUE_STATUS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]},
        "request_id": {"type": "string", "description": "The request id."},
        "response_url": {"type": "string", "description": "The response url."},
        "status_url": {"type": "string", "description": "The status url."},
        "cancel_url": {"type": "string", "description": "The cancel url."},
        "logs": {"type": "object", "description": "The logs.", "additionalProperties": True},
        "metrics": {"type": "object", "description": "The metrics.", "additionalProperties": True},
        "queue_position": {"type": "integer", "description": "The queue position."},
    },
    "required": ["status", "request_id"],
}


def catalog_answers(sources: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """fal models-API answers (``{endpoint_id, metadata, openapi}``) for the
    endpoints of a compact catalog source (``contracts/sources/*.yaml``).

    A source holds ``retrieved`` (the date its facts were read) and a list of
    ``endpoints``, each with ``id``, ``title``, ``category``, ``description``,
    ``url`` (fal's page the facts come from), optional ``note``, ``input`` and
    ``output`` (the two component schemas) and optional ``components``.
    """
    answers = []
    for entry in sources["endpoints"]:
        origin = {"url": entry["url"], "retrieved": str(sources["retrieved"]), "document": name}
        if entry.get("note"):
            origin["note"] = entry["note"]
        doc = document(
            entry["id"],
            input_schema=entry["input"],
            output_schema=entry["output"],
            category=entry["category"],
            components=entry.get("components"),
            info={"x-source": origin},
        )
        answers.append(
            {
                "endpoint_id": entry["id"],
                "metadata": {
                    "display_name": entry["title"],
                    "category": entry["category"],
                    "description": entry["description"],
                },
                "openapi": doc,
            }
        )
    return answers
