"""What a downloaded media file really is: its pixel size and, for audio and
video, its length — read from the file's header, never by decoding it whole.

Live mode compares this with what a result reports (`width`, `height`,
`duration`). Images are read with Pillow; audio and video with PyAV (the
optional `video` extra), which opens the container from the bytes in memory
and reads its header and stream parameters only, so a ten-minute clip costs
what a one-second clip does.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

ProbedKind = Literal["image", "video", "audio"]

# How much of the file FFmpeg may read to find the streams' parameters: enough
# for any real header (MP4's `moov`, WAV's `fmt `, an MP3 frame), small enough
# that a hostile file cannot make the probe read or decode much.
_PROBE_BYTES = 5_000_000
_ANALYZE_MICROSECONDS = 1_000_000


class UnreadableMedia(ValueError):
    """The bytes are not a readable file of the kind probed for."""


class ProbeUnavailable(RuntimeError):
    """Reading audio or video needs PyAV, which is not installed."""


@dataclass(frozen=True, slots=True)
class Probed:
    """The facts a file's header gives about it."""

    kind: ProbedKind
    width: int | None = None  # pixels (image, video)
    height: int | None = None
    duration: float | None = None  # seconds (audio, video), None when the header has none


def probe(body: bytes, kind: ProbedKind) -> Probed:
    """Read `body` as a file of `kind`; `UnreadableMedia` when it is not one,
    `ProbeUnavailable` for audio/video without PyAV."""
    if kind == "image":
        return _image(body)
    return _container(body, kind)


def _image(body: bytes) -> Probed:
    try:
        with Image.open(io.BytesIO(body)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise UnreadableMedia("not a readable image") from exc
    return Probed("image", width, height)


def _container(body: bytes, kind: Literal["video", "audio"]) -> Probed:
    try:
        import av  # the optional `video` extra: imported only when a file is probed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ProbeUnavailable(
            "reading audio and video needs PyAV: pip install 'fal-queue-harness[video]'"
        ) from exc
    options = {"probesize": str(_PROBE_BYTES), "analyzeduration": str(_ANALYZE_MICROSECONDS)}
    try:
        with av.open(io.BytesIO(body), "r", options=options) as container:
            streams = container.streams.video if kind == "video" else container.streams.audio
            if not streams:
                raise UnreadableMedia(f"the file has no {kind} stream")
            stream = streams[0]
            duration = _seconds(stream.duration, stream.time_base)
            if duration is None and container.duration is not None:
                # Some containers (WAV, MP3) time only the whole file.
                duration = container.duration / av.time_base
            if kind == "audio":
                return Probed("audio", duration=duration)
            context: Any = stream.codec_context
            return Probed("video", int(context.width), int(context.height), duration)
    except av.FFmpegError as exc:
        raise UnreadableMedia(f"not a readable {kind} file") from exc


def _seconds(value: int | None, time_base: Any) -> float | None:
    if value is None or time_base is None or value <= 0:
        return None
    return float(value * time_base)
