"""Reading model outputs: where the media files are."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def media_objects(output: Any) -> Iterator[dict[str, Any]]:
    """Every media object in an output, in order: a dict with a string `url` and a
    `content_type` (images, video, audio, files), at any depth."""
    if isinstance(output, dict):
        if isinstance(output.get("url"), str) and "content_type" in output:
            yield output
            return
        for value in output.values():
            yield from media_objects(value)
    elif isinstance(output, list):
        for item in output:
            yield from media_objects(item)
