"""fal queue OpenAPI documents written for the tests, in fal's format and habits."""

from __future__ import annotations

from typing import Any

from mockserver.fal_document import document

NULLABLE_INT: dict[str, Any] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}


def text_to_image() -> dict[str, Any]:
    """An image model with fal's quirks: an `image_size` union, vendor keys inside
    `anyOf` branches, numeric `exclusiveMinimum`, `examples` arrays, descriptions
    with leading newlines, a bare `$ref` with sibling keywords."""
    return document(
        "acme/painter/v2",
        category="text-to-image",
        input_schema={
            "x-fal-order-properties": ["prompt", "image_size", "num_images", "seed"],
            "required": ["prompt"],
            "properties": {
                "prompt": {
                    "type": "string",
                    "title": "Prompt",
                    "description": "\n\nWhat to paint.",
                    "examples": ["a lighthouse at dawn"],
                    "ui": {"important": True},
                },
                "image_size": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/ImageSize"},
                        {
                            "type": "string",
                            "enum": ["square_hd", "square", "portrait_4_3", "landscape_16_9"],
                            "_fal_ui_field": "image_size_preset",
                        },
                    ],
                    "default": "square",
                    "title": "Image Size",
                },
                "num_images": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 4,
                    "default": 1,
                    "title": "Num Images",
                },
                "guidance_scale": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 20,
                    "default": 3.5,
                },
                "seed": {**NULLABLE_INT, "title": "Seed"},
                "output_format": {"type": "string", "enum": ["jpeg", "png"], "default": "jpeg"},
            },
        },
        output_schema={
            "x-fal-order-properties": ["images", "timings", "seed", "has_nsfw_concepts", "prompt"],
            "required": ["images", "timings", "seed", "has_nsfw_concepts", "prompt"],
            "properties": {
                "images": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Image"},
                    "description": "The pictures.",
                },
                "timings": {"type": "object", "additionalProperties": {"type": "number"}},
                "seed": {"type": "integer"},
                "has_nsfw_concepts": {"type": "array", "items": {"type": "boolean"}},
                "prompt": {"type": "string"},
            },
        },
    )


def text_to_video() -> dict[str, Any]:
    """A video model: durations as string enums, an `allOf`-wrapped VideoFile."""
    return document(
        "acme/motion/text-to-video",
        category="text-to-video",
        input_schema={
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string", "examples": ["waves on a beach"]},
                "duration": {"type": "string", "enum": ["1", "2"], "default": "1"},
                "aspect_ratio": {
                    "type": "string",
                    "enum": ["16:9", "9:16", "1:1"],
                    "default": "16:9",
                },
                "resolution": {"type": "string", "enum": ["240p", "480p"], "default": "240p"},
                "fps": {"type": "integer", "minimum": 8, "maximum": 30, "default": 12},
            },
        },
        output_schema={
            "required": ["video"],
            "properties": {
                "video": {
                    "allOf": [{"$ref": "#/components/schemas/VideoFile"}],
                    "description": "The clip.",
                    "examples": [{"url": "https://v3.fal.media/files/x/output.mp4"}],
                },
                "seed": {"type": "integer"},
            },
        },
    )


def text_to_speech() -> dict[str, Any]:
    """A speech model: a bare `$ref` AudioFile whose duration is required."""
    audio = {
        "title": "AudioFile",
        "type": "object",
        "properties": {
            "url": {"type": "string"},
            "content_type": {"type": "string"},
            "file_name": {"type": "string"},
            "file_size": {"type": "integer"},
            "duration": {"type": "number", "description": "Seconds."},
        },
        "required": ["url", "duration"],
    }
    return document(
        "acme/voice/tts",
        category="text-to-speech",
        input_schema={
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 5000},
                "voice": {"type": "string", "enum": ["Aria", "Roger"], "default": "Aria"},
                "speed": {"type": "number", "minimum": 0.5, "maximum": 2, "default": 1},
            },
        },
        output_schema={
            "required": ["audio"],
            "properties": {
                "audio": {"$ref": "#/components/schemas/AudioFile", "description": "Speech."}
            },
        },
        components={"AudioFile": audio},
    )


def upscaler() -> dict[str, Any]:
    """An upscaler: an image URL in, one `Image` out, scaled by `upscale_factor`."""
    return document(
        "acme/sharpen/upscale",
        category="image-to-image",
        input_schema={
            "required": ["image_url"],
            "properties": {
                "image_url": {
                    "type": "string",
                    "title": "Image Url",
                    "examples": ["https://v3.fal.media/files/x/in.png"],
                },
                "upscale_factor": {
                    "type": "number",
                    "minimum": 1,
                    "maximum": 4,
                    "default": 2,
                },
            },
        },
        output_schema={
            "required": ["image"],
            "properties": {"image": {"$ref": "#/components/schemas/Image"}},
        },
    )
