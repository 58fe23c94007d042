"""Judging downloaded media: they download, and each file is what the result says.

`media-download`: every URL answers 200 without auth, as the type reported.
`media-size`: each image, video and audio file is readable as its kind, and
images and videos have the pixel size the result reports. `media-duration`:
audio and video files last as long as the result reports (`duration`), within
a small tolerance. `duration-fidelity`: they last as long as the input asked
(`duration`, `seconds_total`, `num_frames` at a frame rate), with the model's
defaults applied, within a wider tolerance (models round to whole frames).

Only the headers are read (`mockserver.mediaprobe`), from a body the checker
already capped (`MAX_MEDIA_BYTES`). What a result does not report is not
judged: fal's generic `File` has no size or duration, and that is no fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.results import Verdict
from mockserver.mediaprobe import Probed, ProbedKind, ProbeUnavailable, UnreadableMedia, probe

# A media item of a result (a dict with `url`, maybe `content_type`, `width`...)
# with the answer its download got.
Fetched = tuple[dict[str, Any], Exchange]
# ...and what the downloaded file's header says, or why it could not be read.
Read = tuple[dict[str, Any], Exchange, Probed | UnreadableMedia | ProbeUnavailable]

# A reported duration may differ from the file's by this much: containers
# round (an MP3's encoder delay, an MP4's last frame, milliseconds in JSON).
REPORTED_SECONDS = 0.25
REPORTED_RATIO = 0.03
# An asked duration is a target the model meets to the frame or to its own
# granularity (Kling's 5 s clips last 5.1 s): judged more loosely.
ASKED_SECONDS = 0.5
ASKED_RATIO = 0.1
# H.264 in 4:2:0 needs even sides: an encoder may round an odd size by a pixel.
PIXEL_SLACK = 1

# Image types that are text, not pixels (Recraft's vector styles answer SVG):
# Pillow cannot read them, which is no fault of the server.
_UNREAD_TYPES = frozenset({"image/svg+xml"})

_DURATION_FIELDS = ("duration", "seconds_total", "audio_length_in_s", "total_seconds")
_FPS_FIELDS = ("fps", "frames_per_second", "frame_rate")


def media_download(fetched: Sequence[Fetched]) -> Finding:
    """`media-download`: every media URL of a result downloads, as the type it reports."""
    if not fetched:
        return Finding.of("media-download", Verdict.FAIL, "the result names no media files")
    failed = [answer for _, answer in fetched if answer.status_code != 200 or not answer.body]
    if failed:
        reason = f"{len(failed)} of {len(fetched)} media not downloadable: {failed[0].describe()}"
        return Finding.of("media-download", Verdict.FAIL, reason, failed[0])
    for item, answer in fetched:
        served = (answer.header("content-type") or "").split(";")[0]
        if item.get("content_type") and served != item["content_type"]:
            reason = (
                f"served as {answer.header('content-type')!r}, reported {item['content_type']!r}"
            )
            return Finding.of("media-download", Verdict.FAIL, reason, answer)
    reason = f"{len(fetched)} file(s) downloaded without auth"
    return Finding.of("media-download", Verdict.PASS, reason, fetched[0][1])


def kind_of(item: dict[str, Any]) -> ProbedKind | None:
    """The kind a result's media item says it is; None when nothing says
    (a file of another kind, or an untyped file without a pixel size)."""
    content_type = str(item.get("content_type") or "").split(";")[0].strip().lower()
    if content_type in _UNREAD_TYPES:
        return None
    major = content_type.split("/", 1)[0]
    if major in ("image", "video", "audio"):
        return major  # type: ignore[return-value]
    if not item.get("content_type") and "width" in item and "height" in item:
        return "image"
    return None


def read(fetched: Sequence[Fetched]) -> list[Read]:
    """Each downloaded image, video and audio file with what its header says,
    or why it could not be read (files of other kinds are left out). Read once
    per result and handed to the judgements below."""
    found: list[Read] = []
    for item, answer in fetched:
        kind = kind_of(item)
        if kind is None:
            continue
        try:
            found.append((item, answer, probe(answer.body, kind)))
        except (UnreadableMedia, ProbeUnavailable) as exc:
            found.append((item, answer, exc))
    return found


def media_bytes(fetched: Sequence[Fetched]) -> Finding:
    """`media-size` of downloaded files (see `sizes`)."""
    return sizes(read(fetched))


def sizes(files: Sequence[Read]) -> Finding:
    """`media-size`: each file is what the result says (readable, its pixel size)."""
    for item, answer, facts in files:
        if isinstance(facts, ProbeUnavailable):
            continue  # this checker cannot read the kind: no fault of the server
        if isinstance(facts, UnreadableMedia):
            reason = f"a {kind_of(item)} file is unreadable: {facts}"
            return Finding.of("media-size", Verdict.FAIL, reason, answer)
        if facts.width is None or facts.height is None:
            continue
        width, height = item.get("width"), item.get("height")
        if not (isinstance(width, int) and isinstance(height, int)):
            continue  # no pixel size reported: nothing to compare
        slack = PIXEL_SLACK if facts.kind == "video" else 0
        if abs(facts.width - width) > slack or abs(facts.height - height) > slack:
            reason = f"the file is {facts.width}x{facts.height}, reported {width}x{height}"
            return Finding.of("media-size", Verdict.FAIL, reason, answer)
    return Finding.of("media-size", Verdict.PASS, "every file is what the result reports")


def durations(files: Sequence[Read]) -> Finding | None:
    """`media-duration`: audio and video files last as long as the result says.

    None when the result has no audio or video file; a skip when none reports
    its duration or none could be read.
    """
    check = "media-duration"
    timed = [(i, a, p) for i, a, p in files if kind_of(i) in ("audio", "video")]
    if not timed:
        return None
    compared = 0
    for item, answer, facts in timed:
        reported = _number(item.get("duration"))
        if reported is None or not isinstance(facts, Probed) or facts.duration is None:
            continue
        compared += 1
        if not _close(facts.duration, reported, REPORTED_SECONDS, REPORTED_RATIO):
            reason = (
                f"the {facts.kind} lasts {facts.duration:.3f} s, reported {reported:g} s"
                f" (tolerance {_tolerance(reported, REPORTED_SECONDS, REPORTED_RATIO):.2f} s)"
            )
            return Finding.of(check, Verdict.FAIL, reason, answer)
    if not compared:
        unread = next((str(p) for _, _, p in timed if not isinstance(p, Probed)), None)
        reason = unread or "the audio/video files do not report their duration"
        return Finding.of(check, Verdict.SKIP, reason)
    reason = f"{compared} file(s) last as long as reported"
    return Finding.of(check, Verdict.PASS, reason, timed[0][1])


def asked_seconds(data: dict[str, Any]) -> float | None:
    """The length the input asks for (defaults applied by the caller), or None.

    `duration` as 5, "5" or "5s"; `seconds_total`-style fields; `num_frames`
    only together with a frame rate (alone it says nothing about seconds).
    """
    for key in _DURATION_FIELDS:
        value = _number(data.get(key))
        if value is not None and value > 0:
            return value
    frames = _number(data.get("num_frames"))
    rate = next((r for k in _FPS_FIELDS if (r := _number(data.get(k))) is not None), None)
    if frames is not None and rate:
        return frames / rate
    return None


def duration_fidelity(files: Sequence[Read], asked: float | None) -> Finding | None:
    """`duration-fidelity`: audio and video last as long as the input asked.

    None when the input asks no length or the result has no audio or video.
    """
    check = "duration-fidelity"
    if asked is None:
        return None
    timed = [(i, a, p) for i, a, p in files if kind_of(i) in ("audio", "video")]
    if not timed:
        return None
    readable = [(a, p) for _, a, p in timed if isinstance(p, Probed) and p.duration is not None]
    if not readable:
        unread = (str(p) for _, _, p in timed if not isinstance(p, Probed))
        reason = next(unread, "no file tells its length")
        return Finding.of(check, Verdict.SKIP, reason)
    for answer, facts in readable:
        assert facts.duration is not None  # filtered above
        if not _close(facts.duration, asked, ASKED_SECONDS, ASKED_RATIO):
            reason = (
                f"asked for {asked:g} s, the {facts.kind} lasts {facts.duration:.3f} s"
                f" (tolerance {_tolerance(asked, ASKED_SECONDS, ASKED_RATIO):.2f} s)"
            )
            return Finding.of(check, Verdict.FAIL, reason, answer)
    reason = f"asked for {asked:g} s: {len(readable)} file(s) last that long"
    return Finding.of(check, Verdict.PASS, reason, readable[0][0])


def _tolerance(expected: float, seconds: float, ratio: float) -> float:
    return max(seconds, ratio * expected)


def _close(actual: float, expected: float, seconds: float, ratio: float) -> bool:
    return abs(actual - expected) <= _tolerance(expected, seconds, ratio)


def _number(value: Any) -> float | None:
    """A number from 5, 5.0, "5", "5s" or "5 seconds" (fal's enums spell all of them)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        head = value.strip().removesuffix("seconds").removesuffix("s").strip()
        try:
            return float(head)
        except ValueError:
            return None
    return None
