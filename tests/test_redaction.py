"""One redaction policy for the control API, logs, reports and recordings."""

from __future__ import annotations

import logging
import logging.config

import httpx
import pytest
from starlette.testclient import TestClient

from mockserver import FalMock, create_app
from mockserver.check.results import excerpt
from mockserver.redact import MASK, AccessLogFilter, Redactor, uvicorn_log_config
from tests.conftest import DEV

KEY_ID = "7a6b5c4d-1111-2222-3333-444455556666"
KEY_SECRET = "topsecretpart0987654321"
KEY = f"{KEY_ID}:{KEY_SECRET}"
HOOK_TOKEN = "hook-token-abcdef012345"
BODY_KEY = "sk-body-field-key-999"
HEADER_KEY = "x-fal-key-value-777"
SECRETS = (KEY_ID, KEY_SECRET, HOOK_TOKEN, BODY_KEY, HEADER_KEY)


def _control_answers(client: TestClient, request_id: str) -> str:
    return "".join(
        client.get(path).text
        for path in (
            "/_mock/requests",
            "/_mock/jobs",
            f"/_mock/jobs/{request_id}",
            "/_mock/webhooks",
        )
    )


def test_no_control_answer_shows_a_secret(mock: FalMock) -> None:
    mock.webhooks.route_to(httpx.MockTransport(lambda request: httpx.Response(200)))
    with TestClient(create_app(mock)) as client:
        queued = client.post(
            f"/{DEV}",
            params={"fal_webhook": f"http://127.0.0.1:9/hook?token={HOOK_TOKEN}&tenant=7"},
            json={"prompt": f"my key is {KEY_SECRET}", "api_key": BODY_KEY},
            headers={"Authorization": f"Key {KEY}", "X-Fal-Key": HEADER_KEY},
        )
        assert queued.status_code == 200, queued.text
        request_id = queued.json()["request_id"]
        client.post("/_mock/clock/advance", json={"seconds": 10})
        client.post("/_mock/webhooks/deliver")
        shown = _control_answers(client, request_id)
    assert [s for s in SECRETS if s in shown] == []
    # What is not secret is still evidence: the scheme, the other parameters.
    [submitted] = [r for r in mock.requests if r.action == "submit"]
    assert submitted.headers["authorization"] == f"Key {MASK}"
    assert submitted.headers["x-fal-key"] == MASK
    assert submitted.body == {"prompt": f"my key is {MASK}", "api_key": MASK}
    assert "tenant=7" in submitted.query["fal_webhook"]
    assert mock.webhooks.attempts, "the webhook went out (to the real URL, token and all)"
    assert HOOK_TOKEN in mock.webhooks.attempts[0].url


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("apiKey", True),
        ("accessToken", True),
        ("X-Fal-Key", True),
        ("x-amz-security-token", True),
        ("client_secret", True),
        ("prompt", False),
        ("monkey", False),
        ("num_inference_steps", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert Redactor().is_secret_name(name) is secret


def test_each_part_of_an_id_secret_key_is_masked() -> None:
    policy = Redactor.knowing(KEY)
    assert policy.text(f"a {KEY} b {KEY_ID} c {KEY_SECRET}") == "a *** b *** c ***"
    assert policy.url(f"http://h/p?x={KEY_SECRET}") == "http://h/p?x=***"


def test_urls_nested_in_query_values_are_masked() -> None:
    url = f"/fal-ai/x?fal_webhook=http%3A%2F%2Fh%2Fw%3Ftoken%3D{HOOK_TOKEN}&a=1"
    masked = Redactor().url(url)
    assert HOOK_TOKEN not in masked and "a=1" in masked
    assert Redactor().url("http://h/p?a=1&b=%20") == "http://h/p?a=1&b=%20"  # untouched


def test_access_log_lines_are_masked() -> None:
    config = uvicorn_log_config()
    assert config["handlers"]["access"]["filters"] == ["redact"]
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "POST", f"/{DEV}?fal_webhook=http://h/?token%3D{HOOK_TOKEN}", "1.1", 200),
        None,
    )
    assert AccessLogFilter().filter(record)
    assert HOOK_TOKEN not in record.getMessage() and DEV in record.getMessage()
    logging.config.dictConfig(config)  # the configuration uvicorn is given loads


def test_check_reports_mask_each_part_of_the_key() -> None:
    shown = excerpt(f'{{"detail": "bad key {KEY_ID}", "echo": "{KEY_SECRET}"}}', (KEY,))
    assert KEY_ID not in shown and KEY_SECRET not in shown


def test_a_malformed_url_is_masked_not_crashed_on() -> None:
    assert Redactor().url("http://[x/?token=abc") == "http://[x/?***"
    assert Redactor().query({"fal_webhook": "http://[", "a": "1"}) == {
        "fal_webhook": "http://[",
        "a": "1",
    }
