"""Each promise the state machine enforces can fail: break the mock on purpose
(one way at a time) and the machine must report *that* promise broken (not
merely some error)."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from PIL import Image

from mockserver import media
from mockserver.catalog import Model
from mockserver.media import MediaSpec
from mockserver.mock import FalMock
from mockserver.queue import Job, QueueEngine, Retention, State
from tests.property.promises import Promise, PromiseBroken
from tests.property.test_stateful import CATALOG, QueueMachine


class ImageQueueMachine(QueueMachine):
    """The same machine with requests to the recorded image models only: every
    mutation below breaks something an image request shows, and without the
    slow video/audio/LLM models the search finds it in seconds."""

    endpoints: ClassVar[list[str]] = [m.endpoint_id for m in CATALOG if m.output == "images"]


# Generation only: finding the bug is the point here, shrinking it is not.
SEARCH = settings(
    phases=[Phase.generate],
    max_examples=400,
    stateful_step_count=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
    report_multiple_bugs=False,
)


def _growing_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count()

    def position(self: QueueEngine, job: Job) -> int:
        return 0 if job.state is not State.IN_QUEUE else next(counter)

    monkeypatch.setattr(QueueEngine, "queue_position", position)


def _no_logs_key(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.status_body

    def status_body(
        self: FalMock, job: Job, base: str, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        code, body = original(self, job, base, **kwargs)
        if body["status"] == "IN_PROGRESS" and not kwargs.get("with_logs"):
            del body["logs"]  # "logs were not asked for, so why send the key"
        return code, body

    monkeypatch.setattr(FalMock, "status_body", status_body)


def _early_result_is_200(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.result

    def result(self: FalMock, job: Job) -> tuple[int, bytes]:
        if job.state is not State.COMPLETED:
            return 200, b"{}"
        return original(self, job)

    monkeypatch.setattr(FalMock, "result", result)


def _num_images_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Model.media_specs

    def media_specs(self: Model, data: dict[str, Any], seed: int) -> Any:
        return original(self, {**data, "num_images": 1}, seed)

    monkeypatch.setattr(Model, "media_specs", media_specs)
    # ... and in outputs synthesized from a schema (the catalog's models).
    monkeypatch.setattr("mockserver.synthesis._requested_count", lambda data: 1)


def _full_model_path_in_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.urls

    def urls(self: FalMock, job: Job, base_url: str) -> dict[str, str]:
        return {
            k: v.replace(f"/{job.app_id}/", f"/{job.endpoint_id}/")
            for k, v in original(self, job, base_url).items()
        }

    monkeypatch.setattr(FalMock, "urls", urls)


def _status_goes_backwards(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.status_json
    reported: set[str] = set()

    def status_json(self: FalMock, job: Job, base: str, *, with_logs: bool) -> tuple[int, bytes]:
        code, body = original(self, job, base, with_logs=with_logs)
        if job.state is State.COMPLETED and not with_logs:
            if job.id in reported:  # told once; now it "runs" again
                return 202, json.dumps({**json.loads(body), "status": "IN_PROGRESS"}).encode()
            reported.add(job.id)
        return code, body

    monkeypatch.setattr(FalMock, "status_json", status_json)


def _cancelled_yields_output(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.failure_of

    def failure_of(self: FalMock, job: Job) -> Any:
        return None if job.cancelled else original(self, job)

    monkeypatch.setattr(FalMock, "failure_of", failure_of)
    original_result = FalMock.result

    def result(self: FalMock, job: Job) -> tuple[int, bytes]:
        if job.cancelled:
            return 200, b'{"images": []}'
        return original_result(self, job)

    monkeypatch.setattr(FalMock, "result", result)


def _unprovoked_503(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FalMock.result

    def result(self: FalMock, job: Job) -> tuple[int, bytes]:
        if "flux" in job.endpoint_id:  # decided by the job, so a replay fails the same way
            from mockserver.errors import JobFailed, JobFailure

            raise JobFailed(JobFailure(503, "oops"))
        return original(self, job)

    monkeypatch.setattr(FalMock, "result", result)


def _results_never_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Retention, "ttl", lambda self, size: 1e9)  # about 31 years


def _results_expire_early(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Retention.ttl
    monkeypatch.setattr(Retention, "ttl", lambda self, size: original(self, size) / 2)


def _pixels_differ_from_the_reported_size(monkeypatch: pytest.MonkeyPatch) -> None:
    original = media._render_image

    def render_image(spec: MediaSpec) -> bytes:
        return original(dataclasses.replace(spec, width=spec.width + 8))

    monkeypatch.setattr(media, "_render_image", render_image)


def _bytes_of_another_type(monkeypatch: pytest.MonkeyPatch) -> None:
    original = media._render_image

    def render_image(spec: MediaSpec) -> bytes:
        data = original(spec)
        if spec.fmt != "jpeg":
            return data
        buffer = io.BytesIO()
        Image.open(io.BytesIO(data)).save(buffer, format="PNG")  # still labelled image/jpeg
        return buffer.getvalue()

    monkeypatch.setattr(media, "_render_image", render_image)


def _size_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Model.media_specs

    def media_specs(self: Model, data: dict[str, Any], seed: int) -> Any:
        return original(self, {k: v for k, v in data.items() if k != self.size_from}, seed)

    monkeypatch.setattr(Model, "media_specs", media_specs)


def _output_format_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Model.media_specs

    def media_specs(self: Model, data: dict[str, Any], seed: int) -> Any:
        return original(self, {**data, "output_format": "png"}, seed)  # whatever was asked

    monkeypatch.setattr(Model, "media_specs", media_specs)


def _another_key_sees_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    original = QueueEngine.get

    def get(self: QueueEngine, request_id: str, tenant: str | None = None) -> Job | None:
        return original(self, request_id)

    monkeypatch.setattr(QueueEngine, "get", get)


def _seed_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Model.build_output

    def build_output(self: Model, *args: Any, **kwargs: Any) -> dict[str, Any]:
        output = original(self, *args, **kwargs)
        return {**output, "seed": output["seed"] + 1} if "seed" in output else output

    monkeypatch.setattr(Model, "build_output", build_output)


def _output_off_its_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Model.build_output

    def build_output(self: Model, *args: Any, **kwargs: Any) -> dict[str, Any]:
        output = original(self, *args, **kwargs)
        return {**output, "has_nsfw_concepts": "no"} if "has_nsfw_concepts" in output else output

    monkeypatch.setattr(Model, "build_output", build_output)


MUTATIONS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], Promise]] = {
    "queue_position grows": (_growing_positions, Promise.POSITION_NEVER_GROWS),
    "IN_PROGRESS without the logs key": (_no_logs_key, Promise.ANSWERS_FOLLOW_THE_PROTOCOL),
    "200 instead of 400 for an early result": (
        _early_result_is_200,
        Promise.NO_RESULT_BEFORE_COMPLETION,
    ),
    "num_images ignored": (_num_images_ignored, Promise.NUM_IMAGES_HONOURED),
    "request URLs with the full model path": (_full_model_path_in_urls, Promise.URLS_ON_THE_BASE),
    "status goes backwards": (_status_goes_backwards, Promise.STATUS_NEVER_GOES_BACKWARDS),
    "cancelled request yields an output": (
        _cancelled_yields_output,
        Promise.CANCELLED_NEVER_YIELDS_OUTPUT,
    ),
    "5xx that was not injected": (_unprovoked_503, Promise.NO_UNINJECTED_FAILURE),
    "results never expire": (_results_never_expire, Promise.RESULT_EXPIRES),
    "results expire early": (_results_expire_early, Promise.RESULT_KEPT_UNTIL_EXPIRY),
    "pixels differ from the reported size": (
        _pixels_differ_from_the_reported_size,
        Promise.MEDIA_MATCHES_OUTPUT,
    ),
    "bytes of another type than reported": (_bytes_of_another_type, Promise.MEDIA_MATCHES_OUTPUT),
    "output_format ignored": (_output_format_ignored, Promise.OUTPUT_FORMAT_HONOURED),
    "another key sees the request": (_another_key_sees_the_request, Promise.KEYS_ARE_ISOLATED),
    "seed ignored": (_seed_ignored, Promise.SEED_HONOURED),
    "image size ignored": (_size_ignored, Promise.SIZE_HONOURED),
    "output off its schema": (_output_off_its_schema, Promise.OUTPUT_VALIDATES),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_the_state_machine_catches(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mutate, promise = MUTATIONS[name]
    mutate(monkeypatch)
    with pytest.raises(PromiseBroken) as caught:
        run_state_machine_as_test(ImageQueueMachine, settings=SEARCH)
    assert caught.value.promise is promise, str(caught.value)


def test_every_promise_has_a_mutation() -> None:
    assert {promise for _, promise in MUTATIONS.values()} >= set(Promise) - {
        Promise.INPUT_VALIDATION,  # proven by tests/test_bad_input.py and the unit tests
    }
