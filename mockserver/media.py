"""Real media bytes: images, video, audio, 3D models and other files.

Bytes are a pure function of the `MediaSpec`, so the same request always
downloads the same file, and nothing but the small spec is kept per job.
Files are built on first read (and cached), never at submit.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import wave
import zipfile
from array import array
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

from mockserver.contracts import media_dir

MediaKind = Literal["image", "video", "audio", "model", "file"]
MediaFormat = Literal["jpeg", "png", "webp", "mp4", "wav", "glb", "zip", "txt", "bin"]

CONTENT_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "wav": "audio/wav",
    "glb": "model/gltf-binary",
    "zip": "application/zip",
    "txt": "text/plain",
    "bin": "application/octet-stream",
}
_EXTENSIONS = {"jpeg": "jpeg", "png": "png", "webp": "webp", "mp4": "mp4"}
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
VIDEO_FILE = "sample-video.mp4"
AUDIO_RATE = 22050  # samples per second of generated WAV files (mono, 16 bit)
# Bounds that keep one request from costing the mock seconds or gigabytes.
MAX_SIDE = 4096
MAX_SECONDS = 120.0
MAX_FPS = 60.0


class MediaUnavailable(RuntimeError):
    """A media kind needs an optional dependency that is not installed."""


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """Everything that determines one media file's bytes.

    A video with ``width == 0`` is the recorded sample clip (the legacy video
    contracts); any other video is encoded at its size, frame rate and duration.
    """

    kind: MediaKind
    width: int
    height: int
    fmt: str
    seed: int
    index: int
    duration: float = 0.0  # seconds (video, audio)
    fps: float = 0.0  # frames per second (video)
    stem: str = ""  # file name without extension ("" for the default name)

    @property
    def content_type(self) -> str:
        """The file's MIME type."""
        return CONTENT_TYPES.get(self.fmt, "application/octet-stream")

    @property
    def file_name(self) -> str:
        """A file name with the right extension."""
        ext = _EXTENSIONS.get(self.fmt, self.fmt)
        if self.stem:
            return f"{self.stem}.{ext}"
        if self.kind == "video":
            return "output.mp4"
        if self.kind == "image":
            return f"image_{self.index}.{ext}"
        return f"{self.kind}_{self.index}.{ext}"

    @property
    def frames(self) -> int:
        """Number of video frames (at least one)."""
        return max(1, round(self.fps * self.duration))

    @property
    def samples(self) -> int:
        """Number of audio samples (at least one)."""
        return max(1, round(self.duration * AUDIO_RATE))

    @property
    def seconds(self) -> float:
        """How long the built file really lasts: a video is whole frames and a
        WAV whole samples, so 5.1 s at 24 fps is 122 frames, 5.083 s. What a
        result reports as `duration` (live mode compares it with the file)."""
        if self.kind == "video" and self.fps > 0:
            return self.frames / self.fps
        if self.kind == "audio":
            return self.samples / AUDIO_RATE
        return self.duration


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
        return _video_bytes() if spec.width == 0 else _render_video(spec)
    if spec.kind == "image":
        return _render_image(spec)
    if spec.kind == "audio":
        return _render_audio(spec)
    if spec.kind == "model":
        return _render_glb(spec)
    return _render_file(spec)


@lru_cache(maxsize=32)
def _recorded_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def _colour(spec: MediaSpec) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{spec.seed}:{spec.index}".encode()).digest()
    return digest[0], digest[1], digest[2]


@lru_cache(maxsize=64)
def _render_image(spec: MediaSpec) -> bytes:
    # A solid colour derived from the seed: deterministic, distinct per image,
    # and cheap to encode even at 4096x4096.
    from PIL import Image  # here: a test suite's mocks seldom build an image

    image = Image.new("RGB", (spec.width, spec.height), _colour(spec))
    buffer = io.BytesIO()
    options = {"quality": 85} if spec.fmt in ("jpeg", "webp") else {"compress_level": 1}
    image.save(buffer, format=_PIL_FORMATS.get(spec.fmt, "PNG"), **options)
    return buffer.getvalue()


@cache
def _video_bytes() -> bytes:
    return (media_dir() / VIDEO_FILE).read_bytes()


@lru_cache(maxsize=16)
def _render_video(spec: MediaSpec) -> bytes:
    """An H.264 MP4 of exactly the spec's size, frame rate and frame count.

    The frames are one solid colour, so x264 encodes a key frame and one
    all-skip frame; the skip frame's packet is then muxed once per remaining
    frame. The file is real (every player and PyAV decode all its frames) and
    costs the same to build at 10 s of 1080p as at one frame.
    """
    try:
        import av  # the optional `video` extra: imported only when a video is built
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MediaUnavailable(
            "encoding videos needs PyAV: pip install 'fal-queue-harness[video]'"
        ) from exc
    # H.264 in 4:2:0 needs even sides.
    from PIL import Image

    width, height = spec.width + spec.width % 2, spec.height + spec.height % 2
    rate = _fraction(spec.fps)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "preset": "ultrafast",
            "x264-params": "keyint=100000:min-keyint=100000:scenecut=0:bframes=0:threads=1",
        }
        picture = Image.new("RGB", (width, height), _colour(spec))
        frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
        frame = frame.reformat(format="yuv420p")
        packets = []
        for pts in range(min(spec.frames, 2)):
            frame.pts = pts
            packets.extend(stream.encode(frame))
        packets.extend(stream.encode())
        container.mux(packets[0])
        if spec.frames > 1:
            first, second = packets[0].pts or 0, packets[1].pts or 0
            step = second - first
            skip = bytes(packets[1])
            for i in range(1, spec.frames):
                packet = av.Packet(skip)
                packet.stream = stream
                packet.time_base = packets[1].time_base
                packet.pts = packet.dts = first + i * step
                packet.duration = step
                container.mux(packet)
    return buffer.getvalue()


def _fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


@lru_cache(maxsize=16)
def _render_audio(spec: MediaSpec) -> bytes:
    """A mono 16-bit WAV of the spec's duration: a quiet tone whose pitch comes
    from the seed."""
    samples = spec.samples
    pitch = 220 + _colour(spec)[0]
    period = array(
        "h",
        (
            int(3000 * math.sin(2 * math.pi * pitch * n / AUDIO_RATE))
            for n in range(AUDIO_RATE // 10)
        ),
    )
    whole, rest = divmod(samples, len(period))
    pcm = period * whole + period[:rest]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(AUDIO_RATE)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


@lru_cache(maxsize=16)
def _render_glb(spec: MediaSpec) -> bytes:
    """A binary glTF 2.0 file holding one coloured triangle."""
    positions = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)
    red, green, blue = (c / 255 for c in _colour(spec))
    document = {
        "asset": {"version": "2.0", "generator": "fal-queue-harness mock"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorFactor": [red, green, blue, 1]}}],
        "buffers": [{"byteLength": len(positions)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(positions)}],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": 3,
                "type": "VEC3",
                "min": [0, 0, 0],
                "max": [1, 1, 0],
            }
        ],
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned
    binary = positions + b"\0" * (-len(positions) % 4)
    body = (
        struct.pack("<II", len(text), 0x4E4F534A)
        + text
        + struct.pack("<II", len(binary), 0x004E4942)
        + binary
    )
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


@lru_cache(maxsize=16)
def _render_file(spec: MediaSpec) -> bytes:
    text = f"fal-queue-harness mock file {spec.seed}:{spec.index}\n".encode()
    if spec.fmt == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            # A fixed timestamp keeps the bytes deterministic.
            archive.writestr(zipfile.ZipInfo("README.txt", (2024, 1, 1, 0, 0, 0)), text)
        return buffer.getvalue()
    return text


def media_size(spec: MediaFile) -> int:
    """Size in bytes of the file (what a result reports as `file_size`)."""
    return len(render(spec))
