"""Real media bytes: images of exactly the reported size and type, and a video.

Bytes are a pure function of the `MediaSpec`, so the same request always
downloads the same file, and nothing but the small spec is kept per job.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

from PIL import Image

from mockserver.contracts import media_dir

MediaFormat = Literal["jpeg", "png", "webp", "mp4"]

CONTENT_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "mp4": "video/mp4",
}
_EXTENSIONS = {"jpeg": "jpeg", "png": "png", "webp": "webp", "mp4": "mp4"}
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
VIDEO_FILE = "sample-video.mp4"


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """Everything that determines one media file's bytes."""

    kind: Literal["image", "video"]
    width: int
    height: int
    fmt: str
    seed: int
    index: int

    @property
    def content_type(self) -> str:
        """The file's MIME type."""
        return CONTENT_TYPES.get(self.fmt, "application/octet-stream")

    @property
    def file_name(self) -> str:
        """A file name with the right extension."""
        if self.kind == "video":
            return "output.mp4"
        return f"image_{self.index}.{_EXTENSIONS.get(self.fmt, self.fmt)}"


@dataclass(frozen=True, slots=True)
class RecordedFile:
    """A media file a recording stored on disk (`mockserver record`), served as is."""

    path: str
    content_type: str

    @property
    def file_name(self) -> str:
        """The stored file's name."""
        return Path(self.path).name


MediaFile = MediaSpec | RecordedFile


def render(spec: MediaFile) -> bytes:
    """The bytes of the file `spec` describes."""
    if isinstance(spec, RecordedFile):
        return _recorded_bytes(spec.path)
    if spec.kind == "video":
        return _video_bytes()
    return _render_image(spec)


@lru_cache(maxsize=32)
def _recorded_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


@lru_cache(maxsize=64)
def _render_image(spec: MediaSpec) -> bytes:
    # A solid colour derived from the seed: deterministic, distinct per image,
    # and cheap to encode even at 4096x4096.
    digest = hashlib.sha256(f"{spec.seed}:{spec.index}".encode()).digest()
    image = Image.new("RGB", (spec.width, spec.height), (digest[0], digest[1], digest[2]))
    buffer = io.BytesIO()
    options = {"quality": 85} if spec.fmt in ("jpeg", "webp") else {"compress_level": 1}
    image.save(buffer, format=_PIL_FORMATS[spec.fmt], **options)
    return buffer.getvalue()


@cache
def _video_bytes() -> bytes:
    return (media_dir() / VIDEO_FILE).read_bytes()


def media_size(spec: MediaSpec) -> int:
    """Size in bytes of the file (what a video result reports as `file_size`)."""
    return len(render(spec))
