"""Judging a webhook delivery: its body and its signature."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.results import Verdict
from mockserver.client.webhooks import WebhookVerificationError, verify_webhook


def body(delivered: bytes, request_id: str, output: Any, evidence: Exchange) -> Finding:
    """`webhook-body`: fal's body: the request id, status OK and the result as payload."""
    try:
        data = json.loads(delivered)
    except ValueError:
        return Finding.of("webhook-body", Verdict.FAIL, "the webhook body is not JSON", evidence)
    problems = []
    if not isinstance(data, dict):
        problems.append("not a JSON object")
        data = {}
    if data.get("request_id") != request_id:
        problems.append(f"request_id {data.get('request_id')!r}, not {request_id!r}")
    if data.get("status") != "OK":
        problems.append(f"status {data.get('status')!r}, not 'OK'")
    if output is not None and data.get("payload") != output:
        problems.append("payload is not the request's result")
    if problems:
        return Finding.of("webhook-body", Verdict.FAIL, "; ".join(problems), evidence)
    reason = "request_id, status OK and the result as payload"
    return Finding.of("webhook-body", Verdict.PASS, reason, evidence)


def gateway_id(delivered: bytes, evidence: Exchange) -> Finding:
    """`webhook-gateway-request-id`: fal's webhook body has `gateway_request_id` too.

    fal's webhook docs show it beside `request_id`; a receiver written against
    them may read it, no official client does: its absence is a note.
    """
    check = "webhook-gateway-request-id"
    try:
        data = json.loads(delivered)
    except ValueError:
        data = None
    value = data.get("gateway_request_id") if isinstance(data, dict) else None
    if isinstance(value, str) and value:
        return Finding.of(check, Verdict.PASS, "gateway_request_id beside request_id", evidence)
    reason = (
        f"gateway_request_id is {value!r}: fal's webhook docs show a string id beside"
        " request_id (receivers written against them may read it)"
    )
    return Finding.of(check, Verdict.NOTE, reason, evidence)


def is_signed(headers: Mapping[str, str]) -> bool:
    """The delivery carries fal's X-Fal-Webhook-* headers."""
    return any(name.lower().startswith("x-fal-webhook-") for name in headers)


def unsigned(evidence: Exchange) -> Finding:
    """`webhook-signature` failed: the delivery has no X-Fal-Webhook-* headers."""
    reason = "no X-Fal-Webhook-* headers: the webhook is not signed"
    return Finding.of("webhook-signature", Verdict.FAIL, reason, evidence)


def signature(
    headers: Mapping[str, str], delivered: bytes, keys: Exchange, evidence: Exchange
) -> Finding:
    """`webhook-signature`: a signed delivery verifies with the key set `keys` answered."""
    check = "webhook-signature"
    if not is_signed(headers):
        return unsigned(evidence)
    jwks = keys.json_object()
    if keys.status_code != 200 or jwks is None:
        reason = f"the key set at {keys.url} answered {keys.describe()}"
        return Finding.of(check, Verdict.FAIL, reason, keys)
    try:
        verify_webhook(headers, delivered, jwks)
    except WebhookVerificationError as exc:
        reason = f"does not verify with the keys at {keys.url}: {exc}"
        return Finding.of(check, Verdict.FAIL, reason, evidence)
    reason = f"ED25519 signature verified with the keys at {keys.url}"
    return Finding.of(check, Verdict.PASS, reason, evidence)
