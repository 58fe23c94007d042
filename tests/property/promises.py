"""The README's promises about the queue, each with a name the state machine
reports when it is broken (so a mutation test can say *which* one fired)."""

from __future__ import annotations

from enum import StrEnum


class Promise(StrEnum):
    """One promise the mock makes to its clients (README, "Its correctness")."""

    STATUS_NEVER_GOES_BACKWARDS = "statuses never go backwards"
    POSITION_NEVER_GROWS = "queue_position never grows"
    ANSWERS_FOLLOW_THE_PROTOCOL = "every answer has the protocol's shape"
    NO_RESULT_BEFORE_COMPLETION = "no result before completion (400)"
    RESULT_KEPT_UNTIL_EXPIRY = "a finished request exists until its retention ends"
    RESULT_EXPIRES = "a finished request is gone once its retention ends"
    CANCELLED_NEVER_YIELDS_OUTPUT = "a cancelled request never yields output"
    URLS_ON_THE_BASE = "URLs have only owner/alias and resolve on the configured base"
    INPUT_VALIDATION = "invalid inputs get a 422 naming the fields, valid ones are accepted"
    OUTPUT_VALIDATES = "outputs validate against the model's output schema"
    NUM_IMAGES_HONOURED = "num_images images are returned"
    SIZE_HONOURED = "images have the requested size"
    SEED_HONOURED = "the requested seed is returned"
    MEDIA_MATCHES_OUTPUT = "media bytes decode to what the output reports"
    OUTPUT_FORMAT_HONOURED = "output_format decides the media's real type"
    KEYS_ARE_ISOLATED = "a request is visible only to the key that created it"
    NO_UNINJECTED_FAILURE = "no 5xx or dropped connection that was not injected"


class PromiseBroken(AssertionError):
    """The mock broke `promise`; the message says how."""

    def __init__(self, promise: Promise, message: str) -> None:
        super().__init__(f"[{promise.name}] {promise.value}: {message}")
        self.promise = promise


def require(condition: object, promise: Promise, message: str = "") -> None:
    """Raise `PromiseBroken(promise)` unless `condition` holds."""
    if not condition:
        raise PromiseBroken(promise, message)
