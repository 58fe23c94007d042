"""The OpenAPI document is true to the server: Schemathesis, every check, both profiles.

In process (ASGI) and bounded so it stays cheap in `make test`: a fixed seed,
a few fuzzed examples per operation, the (slow, exhaustive) coverage phase off.
For a deep run: ``SCHEMATHESIS_ALL=1 SCHEMATHESIS_EXAMPLES=100
SCHEMATHESIS_COVERAGE=1 pytest tests/test_openapi_conformance.py``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from mockserver import FalMock, ManualClock, MockConfig, create_app
from mockserver.profiles import get_profile

schemathesis = pytest.importorskip("schemathesis")  # in the dev extra; the wheel does not need it

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "3"))
COVERAGE = os.environ.get("SCHEMATHESIS_COVERAGE") == "1"
# The request operations, the surface beyond the queue (tokens, storage, the
# proxy) and two models' submit and stream paths (an image and a video model)
# by default; every catalog model's with SCHEMATHESIS_ALL=1.
ALL = os.environ.get("SCHEMATHESIS_ALL") == "1"
SUBSET = (
    r"^/(\{owner\}/.*|tokens/|storage/.*|api/_?fal/proxy"
    r"|(_run/)?(fal-ai/flux-1/dev|fal-ai/example-video/text-to-video)(/stream)?)$"
)


def _schema(profile: str) -> Any:
    mock = FalMock(MockConfig(profile=get_profile(profile), instant=True), clock=ManualClock())
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(mock))
    if not ALL:
        schema = schema.include(path_regex=SUBSET)
    schema.config.seed = 20261125  # derandomized: the same cases every run
    schema.config.phases.coverage.enabled = COVERAGE
    # The proxy route refuses a target that is not one of fal's hosts with 412, as
    # @fal-ai/server-proxy does: a rejection too.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "412"]
    scheme = mock.config.profile.auth_scheme

    @schema.auth()
    class FalKey:
        """The profile's Authorization scheme with a key (any non-empty key is taken)."""

        def get(self, case: Any, context: Any) -> str:
            return "conformance-key"

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"{scheme} {data}"}

    return schema


official = _schema("official")
intermediary = _schema("intermediary")
_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@official.parametrize()
@_SETTINGS
def test_the_official_profile_matches_its_document(case: Any) -> None:
    case.call_and_validate()  # every check Schemathesis has


@intermediary.parametrize()
@_SETTINGS
def test_the_intermediary_profile_matches_its_document(case: Any) -> None:
    case.call_and_validate()
