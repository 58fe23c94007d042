"""Outputs for any output schema: a valid answer built from the schema and the input.

`synthesize` walks a self-contained output JSON Schema (refs inlined, as the
catalog stores it) and builds a value it accepts, deterministic per (input,
seed). Media objects (fal's `File`/`Image`/`VideoFile`/`AudioFile`, found by
the ``x-media-kind`` annotation the importer writes or by their shape) become
`MediaSpec`s whose URL and size a `MediaSink` supplies; the bytes are built
only when someone downloads them. What the input decides is honoured: pixel
size, counts, duration and frame rate, output format, the seed, and fields
the output shares with the input (e.g. the prompt).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

from mockserver.media import CONTENT_TYPES, MAX_FPS, MAX_SECONDS, MAX_SIDE, MediaKind, MediaSpec

MEDIA_KEY = "x-media-kind"
"""Annotation the importer puts on a media schema (image, video, audio, model, file)."""

MEDIA_KINDS: tuple[MediaKind, ...] = ("image", "video", "audio", "model", "file")
COUNT_FIELDS = ("num_images", "num_outputs", "num_samples", "num_videos", "batch_size")
DEFAULT_IMAGE_SIZE = (1024, 1024)
DEFAULT_VIDEO_SIZE = (1280, 720)
DEFAULT_FPS = 24.0
DEFAULT_VIDEO_SECONDS = 5.0
DEFAULT_AUDIO_SECONDS = 3.0
_MAX_DEPTH = 12

# Pixel sizes of fal's `image_size` presets and of image aspect ratios.
IMAGE_SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
_LONG_SIDES = {"1k": 1024, "2k": 2048, "4k": 4096}
_TEXT_FIELDS = frozenset(
    {"output", "text", "transcription", "response", "content", "answer", "caption", "result"}
)
_MEDIA_FIELDS = ("url", "content_type", "file_name", "file_size")
_FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}
_KIND_WORDS: tuple[tuple[MediaKind, tuple[str, ...]], ...] = (
    ("model", ("glb", "mesh", "3d", "gltf", "model_file", "model_urls")),
    ("video", ("video",)),
    ("audio", ("audio", "speech", "voice", "music", "sound", "wav", "mp3")),
    ("image", ("image", "mask", "depth", "frame", "thumbnail", "picture")),
)


class MediaSink(Protocol):
    """Where synthesized media files go: the mock registers them and serves them."""

    def url(self, spec: MediaSpec) -> str:
        """The URL the output reports for the file."""

    def size(self, spec: MediaSpec) -> int:
        """The file's size in bytes (builds it: called only when a schema asks)."""


@dataclass
class _State:
    data: dict[str, Any]
    seed: int
    sink: MediaSink
    run_seconds: float
    rng: random.Random
    counts: dict[str, int] = field(default_factory=dict)
    images: int = 0  # image files made so far (has_nsfw_concepts follows it)


def synthesize(
    schema: dict[str, Any],
    data: dict[str, Any],
    seed: int,
    sink: MediaSink,
    *,
    run_seconds: float = 1.0,
) -> Any:
    """A value `schema` accepts, for input `data` (defaults applied) and `seed`."""
    canonical = json.dumps(data, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{seed}:{canonical}".encode()).digest()
    state = _State(data, seed, sink, run_seconds, random.Random(digest))
    return _value(state, schema, "", 0)


def flatten(schema: Any) -> dict[str, Any]:
    """One schema for a value: `allOf` merged in, the non-null branch of a union chosen."""
    if not isinstance(schema, dict):
        return {}
    result = {k: v for k, v in schema.items() if k not in ("allOf", "anyOf", "oneOf")}
    for part in schema.get("allOf", []):
        merged = flatten(part)
        for key, value in merged.items():
            if key == "properties":
                result["properties"] = {**value, **result.get("properties", {})}
            elif key == "required":
                result["required"] = sorted({*value, *result.get("required", [])})
            else:
                result.setdefault(key, value)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        chosen = next((b for b in branches if not _is_null(b)), branches[0])
        for key, value in flatten(chosen).items():
            result.setdefault(key, value)
    return result


def media_kind(schema: dict[str, Any], name: str = "") -> MediaKind | None:
    """The kind of media a (flattened) schema describes, None when it is not a file."""
    declared = schema.get(MEDIA_KEY)
    properties = schema.get("properties")
    if declared is None and not (
        isinstance(properties, dict)
        and "url" in properties
        and any(key in properties for key in ("content_type", "file_name", "file_size"))
    ):
        return None
    if declared in ("image", "video", "audio", "model"):
        return declared  # type: ignore[no-any-return]
    hinted = _content_type_kind(schema)
    if hinted is not None:
        return hinted
    lowered = name.lower()
    for kind, words in _KIND_WORDS:
        if any(word in lowered for word in words):
            return kind
    if isinstance(properties, dict) and "width" in properties and "height" in properties:
        return "image"
    return "file"


def _content_type_kind(schema: dict[str, Any]) -> MediaKind | None:
    # Only what the schema fixes (not its `examples`: fal's generic `File`
    # shows "image/png" as an example whatever the file holds).
    prop = flatten((schema.get("properties") or {}).get("content_type"))
    fixed = [prop[k] for k in ("const", "default") if k in prop] + list(prop.get("enum", []))
    for value in fixed:
        if isinstance(value, str):
            major = value.split("/", 1)[0]
            if major in ("image", "video", "audio", "model"):
                return major  # type: ignore[return-value]
    return None


def _declared_values(schema: dict[str, Any]) -> list[Any]:
    values = [schema[k] for k in ("const", "default") if k in schema]
    return values + list(schema.get("enum", [])) + list(schema.get("examples", []))


def _nullable(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    branches = schema.get("anyOf") or schema.get("oneOf") or []
    return any(_is_null(b) for b in branches)


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _value(state: _State, raw: Any, name: str, depth: int) -> Any:
    schema = flatten(raw)
    kind = media_kind(schema, name)
    if kind is not None:
        return _media(state, schema, kind, name)
    special = _special(state, schema, name)
    if special is not _NOTHING:
        return special
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        values = schema["enum"]
        return schema["default"] if schema.get("default") in values else values[0]
    kind_of = _type_of(schema)
    if kind_of == "object":
        return _object(state, schema, depth)
    if kind_of == "array":
        return _array(state, schema, name, depth)
    if "default" in schema and _accepts(schema, schema["default"]):
        return schema["default"]
    if kind_of == "string":
        return _string(state, schema, name)
    if kind_of in ("integer", "number"):
        return _number(state, schema, kind_of == "integer")
    if kind_of == "boolean":
        return False
    return None


_NOTHING = object()


def _special(state: _State, schema: dict[str, Any], name: str) -> Any:
    """Values a field's name decides, when the schema accepts them."""
    candidates: list[Any] = []
    if name == "seed":
        candidates.append(state.seed)
    if name == "timings":
        candidates.append({"inference": round(state.run_seconds, 6)})
    if name == "has_nsfw_concepts":
        candidates.append([False] * max(1, state.images))
    if name in state.data:
        candidates.append(state.data[name])  # echo what the input said (prompt, ...)
    if name in _TEXT_FIELDS and _type_of(schema) == "string":
        candidates.append(_echo_text(state.data))
    for value in candidates:
        if _accepts(schema, value):
            return value
    return _NOTHING


def _echo_text(data: dict[str, Any]) -> str:
    for key in ("prompt", "text", "input", "question", "query"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return f"Mock answer to: {value}"
    for key, value in data.items():
        if key.endswith("_url") and isinstance(value, str):
            return f"Mock transcription of {value}"
    return "Mock output"


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and "properties" in schema:
        return "object"
    return kind if isinstance(kind, str) else None


def _object(state: _State, schema: dict[str, Any], depth: int) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    required = set(schema.get("required", []))
    result: dict[str, Any] = {}
    # Flags that follow the media (one per image) are filled after the media.
    ordered = sorted(properties.items(), key=lambda item: item[0] == "has_nsfw_concepts")
    for name, prop in ordered:
        if name not in required and depth >= _MAX_DEPTH:
            continue
        if name not in required and _nullable(prop):
            # An optional field that may be null (an error, an optional mask):
            # null unless the input or the field's name decides a value.
            special = _special(state, flatten(prop), name)
            result[name] = None if special is _NOTHING else special
            continue
        value = _value(state, prop, name, depth + 1)
        if value is None and name not in required and not _accepts(flatten(prop), None):
            continue
        result[name] = value
    return {name: result[name] for name in properties if name in result}


def _array(state: _State, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
    items = schema.get("items") or {}
    item = flatten(items)
    low = int(schema.get("minItems", 0))
    high = int(schema.get("maxItems", max(low, 64)))
    if media_kind(item, name) is not None:
        count = _requested_count(state.data)
    elif name == "has_nsfw_concepts":
        count = max(1, state.images)
    else:
        count = 1 if depth < _MAX_DEPTH else 0
    count = min(max(count, low), high)
    return [_value(state, items, name, depth + 1) for _ in range(count)]


def _requested_count(data: dict[str, Any]) -> int:
    for key in COUNT_FIELDS:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return min(value, 16)
    return 1


def _string(state: _State, schema: dict[str, Any], name: str) -> str:
    for example in schema.get("examples", []):
        if isinstance(example, str) and _accepts(schema, example):
            return example
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2024-01-01T00:00:00Z"
    if fmt in ("uri", "url"):
        return "https://example.com/mock"
    low = int(schema.get("minLength", 0))
    high = int(schema.get("maxLength", 10_000))
    text = f"mock {name or 'text'} {state.rng.randrange(1000)}"
    return text.ljust(low, ".")[: max(high, 0)]


def _number(state: _State, schema: dict[str, Any], integer: bool) -> int | float:
    for example in schema.get("examples", []):
        if _accepts(schema, example):
            return example  # type: ignore[no-any-return]
    low = schema.get("minimum")
    high = schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = schema["exclusiveMinimum"] + (1 if integer else 1e-3)
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = schema["exclusiveMaximum"] - (1 if integer else 1e-3)
    low = 0 if low is None else low
    high = low + 100 if high is None else high
    if integer:
        return state.rng.randint(int(-(-low // 1)), max(int(high // 1), int(-(-low // 1))))
    value = round(state.rng.uniform(low, high), 3)
    return min(max(value, low), high)


@lru_cache(maxsize=4096)
def _validator(text: str) -> Draft202012Validator:
    # Imported here: only synthesized outputs with examples need it, and it
    # is a large share of what the first mock of a test run would import.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(text))


def _accepts(schema: dict[str, Any], value: Any) -> bool:
    clean = {k: v for k, v in schema.items() if k != MEDIA_KEY}
    return bool(_validator(json.dumps(clean, sort_keys=True)).is_valid(value))


# -- media ------------------------------------------------------------------------


def _media(state: _State, schema: dict[str, Any], kind: MediaKind, name: str) -> dict[str, Any]:
    index = state.counts.get(kind, 0)
    state.counts[kind] = index + 1
    spec = media_spec(kind, schema, name, state.data, state.seed, index)
    if kind == "image":
        state.images += 1
    properties = schema.get("properties") or {}
    required = set(schema.get("required", []))
    values: dict[str, Callable[[], Any]] = {
        "url": lambda: state.sink.url(spec),
        "content_type": lambda: spec.content_type,
        "file_name": lambda: spec.file_name,
        "file_size": lambda: state.sink.size(spec),
        "width": lambda: spec.width,
        "height": lambda: spec.height,
        # The built file's true length (whole frames or samples), not the asked one.
        "duration": lambda: round(spec.seconds, 3),
        "fps": lambda: spec.fps,
        "num_frames": lambda: spec.frames,
    }
    result: dict[str, Any] = {}
    for prop in properties:
        if kind == "image" and prop in ("file_name", "file_size") and prop not in required:
            # fal's images report url, size and type only; leaving the byte
            # count out also keeps completion from encoding every picture.
            continue
        if prop in values and (prop in _MEDIA_FIELDS or kind in ("image", "video", "audio")):
            if prop in ("width", "height") and kind not in ("image", "video"):
                continue
            if prop in ("fps", "num_frames") and kind != "video":
                continue
            if prop == "duration" and kind not in ("video", "audio"):
                continue
            result[prop] = values[prop]()
        elif prop in required:
            result[prop] = _value(state, properties[prop], prop, _MAX_DEPTH)
    return result


def media_spec(
    kind: MediaKind,
    schema: dict[str, Any],
    name: str,
    data: dict[str, Any],
    seed: int,
    index: int,
) -> MediaSpec:
    """The file a media field of an output gets for input `data`."""
    if kind == "image":
        width, height = pixel_size(data, DEFAULT_IMAGE_SIZE, video=False)
        return MediaSpec("image", width, height, _image_format(data, schema), seed, index)
    if kind == "video":
        width, height = pixel_size(data, DEFAULT_VIDEO_SIZE, video=True)
        fps = _fps(data)
        return MediaSpec(
            "video",
            width,
            height,
            "mp4",
            seed,
            index,
            duration=_seconds(data, DEFAULT_VIDEO_SECONDS, fps),
            fps=fps,
            stem=f"output_{index}" if index else "output",
        )
    if kind == "audio":
        return MediaSpec(
            "audio", 0, 0, "wav", seed, index, duration=_audio_seconds(data), stem=f"audio_{index}"
        )
    if kind == "model":
        return MediaSpec("model", 0, 0, "glb", seed, index, stem=f"model_{index}")
    return MediaSpec("file", 0, 0, _file_format(schema, name), seed, index, stem=f"file_{index}")


def _image_format(data: dict[str, Any], schema: dict[str, Any]) -> str:
    asked = data.get("output_format")
    if isinstance(asked, str) and asked.lower() in _FORMATS:
        return _FORMATS[asked.lower()]
    prop = flatten((schema.get("properties") or {}).get("content_type"))
    for value in _declared_values(prop):
        if isinstance(value, str) and value.removeprefix("image/") in _FORMATS:
            return _FORMATS[value.removeprefix("image/")]
    return "png"


def _file_format(schema: dict[str, Any], name: str) -> str:
    prop = flatten((schema.get("properties") or {}).get("content_type"))
    by_type = {v: k for k, v in CONTENT_TYPES.items()}
    for value in _declared_values(prop):
        if value in by_type and by_type[value] in ("zip", "txt", "bin"):
            return by_type[value]
    lowered = name.lower()
    if "zip" in lowered or "archive" in lowered:
        return "zip"
    if "text" in lowered or "txt" in lowered or "srt" in lowered:
        return "txt"
    return "bin"


def pixel_size(data: dict[str, Any], default: tuple[int, int], *, video: bool) -> tuple[int, int]:
    """Output pixel size from `image_size`, `width`/`height`, `resolution` and
    `aspect_ratio` in the input (defaults applied), or `default`."""
    size = _explicit_size(data)
    if size is None:
        size = _resolution_size(data, default, video=video)
    width, height = (min(max(1, side), MAX_SIDE) for side in size)
    factor = _upscale_factor(data)
    if factor is not None:
        width, height = (min(MAX_SIDE, max(1, round(side * factor))) for side in (512, 512))
    if video:  # H.264 wants even sides
        width, height = width - width % 2 or 2, height - height % 2 or 2
    return width, height


def _explicit_size(data: dict[str, Any]) -> tuple[int, int] | None:
    for key in ("image_size", "video_size"):
        value = data.get(key)
        if isinstance(value, dict) and _ints(value.get("width"), value.get("height")):
            return int(value["width"]), int(value["height"])
        if isinstance(value, str) and value in IMAGE_SIZE_PRESETS:
            return IMAGE_SIZE_PRESETS[value]
    if _ints(data.get("width"), data.get("height")):
        return int(data["width"]), int(data["height"])
    return None


def _ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)


_RATIO = re.compile(r"^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$")
_PIXELS = re.compile(r"^(\d+)x(\d+)$")
_LINES = re.compile(r"^(\d+)p$")


def _resolution_size(
    data: dict[str, Any], default: tuple[int, int], *, video: bool
) -> tuple[int, int]:
    ratio_text = data.get("aspect_ratio")
    resolution = str(data.get("resolution", "")).strip().lower()
    pixels = _PIXELS.match(resolution)
    if pixels:
        return int(pixels[1]), int(pixels[2])
    match = _RATIO.match(ratio_text) if isinstance(ratio_text, str) else None
    ratio = float(match[1]) / float(match[2]) if match and float(match[2]) else None
    lines = _LINES.match(resolution)
    if lines:
        short = int(lines[1])
        ratio = ratio or default[0] / default[1]
        if ratio >= 1:
            return _even(short * ratio), short
        return short, _even(short / ratio)
    if resolution in _LONG_SIDES:
        long_side = _LONG_SIDES[resolution]
        ratio = ratio or default[0] / default[1]
        if ratio >= 1:
            return long_side, _even(long_side / ratio)
        return _even(long_side * ratio), long_side
    if ratio is not None:
        # The same area as the default, at the asked shape (multiples of 16).
        area = default[0] * default[1]
        width = (area * ratio) ** 0.5
        return _sixteen(width), _sixteen(width / ratio)
    return default


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _sixteen(value: float) -> int:
    return max(16, round(value / 16) * 16)


def _upscale_factor(data: dict[str, Any]) -> float | None:
    for key in ("upscale_factor", "upscaling_factor", "scale"):
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 16:
            return float(value)
    return None


def _number_in(value: Any) -> float | None:
    """A number from 5, 5.0, "5", "5s" or "5 seconds"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = re.match(r"^\s*(\d+(?:\.\d+)?)", value)
        if match:
            return float(match[1])
    return None


def _fps(data: dict[str, Any]) -> float:
    for key in ("fps", "frames_per_second", "frame_rate"):
        value = _number_in(data.get(key))
        if value is not None and value > 0:
            return min(value, MAX_FPS)
    return DEFAULT_FPS


def _seconds(data: dict[str, Any], default: float, fps: float) -> float:
    value = _number_in(data.get("duration"))
    if value is None:
        frames = _number_in(data.get("num_frames"))
        if frames is not None:
            value = frames / fps
    if value is None or value <= 0:
        value = default
    return min(value, MAX_SECONDS)


def _audio_seconds(data: dict[str, Any]) -> float:
    for key in ("duration", "seconds_total", "audio_length_in_s", "total_seconds", "length"):
        value = _number_in(data.get(key))
        if value is not None and value > 0:
            return min(value, MAX_SECONDS)
    text = data.get("text") or data.get("input") or data.get("gen_text") or data.get("prompt")
    if isinstance(text, str) and text:
        # Speech: about fifteen characters a second.
        return min(max(1.0, round(len(text) / 15, 2)), MAX_SECONDS)
    return DEFAULT_AUDIO_SECONDS
