"""Live mode reads audio and video headers: duration and pixel size against the
result and the input, judged with a tolerance, failing on servers that lie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mockserver import ManualClock, create_app
from mockserver.catalog import Catalog
from mockserver.check.exchange import Exchange
from mockserver.check.judge import media
from mockserver.check.results import Verdict
from mockserver.media import MediaSpec, render
from mockserver.mediaprobe import UnreadableMedia, probe
from mockserver.synthesis import MEDIA_KEY, synthesize
from tests.check import deviants
from tests.check.helpers import failures, make_mock, run_check

Wrap = Callable[[Any], Any]
SCENARIOS = ("video-duration", "audio-duration")


def _video(seconds: float, fps: float = 24.0, size: tuple[int, int] = (320, 180)) -> MediaSpec:
    return MediaSpec("video", size[0], size[1], "mp4", 7, 0, duration=seconds, fps=fps)


def _audio(seconds: float) -> MediaSpec:
    return MediaSpec("audio", 0, 0, "wav", 7, 0, duration=seconds)


def _fetched(spec: MediaSpec, **reported: Any) -> media.Fetched:
    body = render(spec)
    item = {"url": "http://cdn/x", "content_type": spec.content_type, **reported}
    return item, Exchange("GET", "http://cdn/x", 200, {"content-type": spec.content_type}, body)


# -- the mock against itself -------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [_video(5.0), _video(5.1), _video(81 / 16, fps=16.0), _video(0.01), _audio(2.345), _audio(30)],
    ids=["5s", "5.1s-at-24fps", "81-frames-at-16fps", "one-frame", "odd-audio", "30s-audio"],
)
def test_the_mocks_files_last_what_it_reports(spec: MediaSpec) -> None:
    facts = probe(render(spec), "video" if spec.kind == "video" else "audio")
    assert facts.duration == pytest.approx(spec.seconds, abs=1e-3)
    if spec.kind == "video":
        assert (facts.width, facts.height) == (spec.width, spec.height)


def test_synthesized_outputs_report_their_files_true_length_and_size() -> None:
    # fal's VideoFile and AudioFile report duration (and a video its size):
    # whatever was asked, what the mock reports is what the bytes hold.
    file_props = {"url": {"type": "string"}, "content_type": {"type": "string"}}
    video = {
        "type": "object",
        MEDIA_KEY: "video",
        "required": ["url", "duration", "width", "height"],
        "properties": {
            **file_props,
            "duration": {"type": "number"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
        },
    }
    audio = {
        "type": "object",
        MEDIA_KEY: "audio",
        "required": ["url", "duration"],
        "properties": {**file_props, "duration": {"type": "number"}},
    }
    schema = {
        "type": "object",
        "required": ["video", "audio"],
        "properties": {"video": video, "audio": audio},
    }
    files: dict[str, MediaSpec] = {}

    class Sink:
        def url(self, spec: MediaSpec) -> str:
            files[f"http://cdn/{len(files)}"] = spec
            return f"http://cdn/{len(files) - 1}"

        def size(self, spec: MediaSpec) -> int:
            return len(render(spec))

    for data in ({"duration": "5.1"}, {"num_frames": 81, "fps": 16}, {"duration": 0.01}, {}):
        files.clear()
        output = synthesize(schema, {"resolution": "480p", **data}, 3, Sink(), run_seconds=1.0)
        fetched = [
            (item, Exchange("GET", item["url"], 200, {}, render(files[item["url"]])))
            for item in (output["video"], output["audio"])
        ]
        read = media.read(fetched)
        assert media.sizes(read).verdict is Verdict.PASS, data
        durations = media.durations(read)
        assert durations is not None and durations.verdict is Verdict.PASS, (data, durations)
        # ...and exactly: no tolerance is needed for the mock's own files
        for item, _, facts in read:
            assert not isinstance(facts, Exception)
            assert facts.duration == pytest.approx(item["duration"], abs=1e-3)


# -- the judgements on real bytes ----------------------------------------------------------


def test_a_true_report_passes_and_a_false_one_fails_beyond_the_tolerance() -> None:
    spec = _video(5.0)
    for reported, verdict in ((5.0, Verdict.PASS), (5.2, Verdict.PASS), (5.5, Verdict.FAIL)):
        finding = media.durations(media.read([_fetched(spec, duration=reported)]))
        assert finding is not None and finding.verdict is verdict, (reported, finding)
    # the tolerance grows with the length: 3 % of a minute is 1.8 s
    long = _audio(60.0)
    assert media.durations(media.read([_fetched(long, duration=61.5)])).verdict is Verdict.PASS  # type: ignore[union-attr]
    failed = media.durations(media.read([_fetched(long, duration=62.0)]))
    assert failed is not None and failed.verdict is Verdict.FAIL
    assert failed.reason == "the audio lasts 60.000 s, reported 62 s (tolerance 1.86 s)"


def test_video_pixel_size_is_compared_with_a_pixel_of_slack() -> None:
    spec = _video(1.0, size=(320, 180))
    for reported, verdict in (((320, 180), Verdict.PASS), ((319, 181), Verdict.PASS)):
        item = _fetched(spec, width=reported[0], height=reported[1])
        assert media.sizes(media.read([item])).verdict is verdict
    wrong = media.sizes(media.read([_fetched(spec, width=640, height=360)]))
    assert wrong.verdict is Verdict.FAIL
    assert wrong.reason == "the file is 320x180, reported 640x360"


def test_what_a_result_does_not_report_is_not_a_failure() -> None:
    # fal's plain `File`: no duration, no size
    read = media.read([_fetched(_video(2.0)), _fetched(_audio(2.0))])
    assert media.sizes(read).verdict is Verdict.PASS
    skipped = media.durations(read)
    assert skipped is not None and skipped.verdict is Verdict.SKIP
    # no audio or video at all: nothing to say about durations
    image = _fetched(MediaSpec("image", 8, 8, "png", 1, 0), width=8, height=8)
    assert media.durations(media.read([image])) is None
    assert media.duration_fidelity(media.read([image]), 5.0) is None
    # files of other kinds (3D, archives) download, and are not read as images
    glb = _fetched(MediaSpec("model", 0, 0, "glb", 1, 0))
    assert media.read([glb]) == [] and media.sizes([]).verdict is Verdict.PASS
    # nor are vector pictures, which Pillow cannot read (Recraft answers SVG)
    svg: dict[str, Any] = {"url": "http://cdn/x.svg", "content_type": "image/svg+xml"}
    assert media.read([(svg, Exchange("GET", svg["url"], 200, {}, b"<svg/>"))]) == []


def test_an_unreadable_file_fails_media_size() -> None:
    item, answer = _fetched(_audio(1.0))
    broken = Exchange("GET", answer.url, 200, answer.headers, b"RIFF" + b"\0" * 40)
    finding = media.sizes(media.read([(item, broken)]))
    assert finding.verdict is Verdict.FAIL and "audio file is unreadable" in finding.reason
    with pytest.raises(UnreadableMedia):
        probe(render(_audio(1.0)), "video")  # a WAV has no video stream


@pytest.mark.parametrize(
    ("data", "seconds"),
    [
        ({"duration": "5"}, 5.0),
        ({"duration": "9s"}, 9.0),
        ({"duration": 8}, 8.0),
        ({"seconds_total": 30}, 30.0),
        ({"num_frames": 81, "frames_per_second": 16}, 81 / 16),
        ({"num_frames": 81}, None),  # frames alone say nothing about seconds
        ({"duration": "long"}, None),
        ({"duration": True}, None),
        ({}, None),
    ],
)
def test_the_asked_length(data: dict[str, Any], seconds: float | None) -> None:
    assert media.asked_seconds(data) == seconds


def test_duration_fidelity_compares_with_the_asked_length() -> None:
    read = media.read([_fetched(_video(5.0)), _fetched(_audio(5.1))])
    assert media.duration_fidelity(read, None) is None
    passed = media.duration_fidelity(read, 5.0)
    assert passed is not None and passed.verdict is Verdict.PASS
    failed = media.duration_fidelity(read, 10.0)
    assert failed is not None and failed.verdict is Verdict.FAIL
    assert failed.reason == "asked for 10 s, the video lasts 5.000 s (tolerance 1.00 s)"


# -- whole scenarios, against the mock and against broken copies of it -----------------------


def test_the_duration_scenarios_pass_on_the_mock(clock: ManualClock, catalog: Catalog) -> None:
    app = create_app(make_mock("official", clock, catalog))
    report = run_check(app, clock, catalog, scenarios=SCENARIOS)
    assert failures(report) == {}
    ran = {(r.scenario, r.check): r.verdict for r in report.results if r.scenario in SCENARIOS}
    for scenario in SCENARIOS:
        assert ran[(scenario, "duration-fidelity")] is Verdict.PASS
        assert ran[(scenario, "media-size")] is Verdict.PASS
        # the catalog's outputs are fal's plain `File`: no duration to compare
        assert ran[(scenario, "media-duration")] is Verdict.SKIP


@pytest.mark.parametrize(
    ("wrap", "check", "says"),
    [
        (deviants.misreported_media, "media-duration", "reported 60 s"),
        (deviants.misreported_media, "media-size", "reported 320x240"),
        (deviants.one_second_media, "duration-fidelity", "lasts 1.000 s"),
        (deviants.garbled_media, "media-size", "file is unreadable"),
    ],
    ids=["false-duration", "false-video-size", "short-files", "garbled-files"],
)
def test_each_media_deviation_fails_its_check(
    wrap: Wrap, check: str, says: str, clock: ManualClock, catalog: Catalog
) -> None:
    app = wrap(create_app(make_mock("official", clock, catalog)))
    report = run_check(app, clock, catalog, scenarios=SCENARIOS)
    failed = {r.scenario: r for r in report.by_check(check) if r.verdict is Verdict.FAIL}
    expected = {"video-duration"} if check == "media-size" and "320" in says else set(SCENARIOS)
    assert set(failed) == expected, failures(report)
    assert all(says in r.reason and r.evidence for r in failed.values()), failed
    assert not report.ok
