"""Verifying a fal webhook: ED25519 over request id, user id, timestamp and body hash.

Written independently of the mock's signer (`mockserver.webhooks`): the two
meet only in tests, so a mistake in one is caught by the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mockserver.client.errors import FalError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: How far a webhook's timestamp may be from now (seconds), as fal's docs advise.
DEFAULT_TOLERANCE = 300.0
_HEADERS = ("request-id", "user-id", "timestamp", "signature")


class WebhookVerificationError(FalError):
    """A webhook that must not be trusted; the message says why."""


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    jwks: Mapping[str, Any],
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """The webhook's JSON body, once its signature and freshness check out.

    `headers` are the request's headers (any case), `body` its raw bytes (not
    re-serialized JSON: the signature covers the exact bytes), `jwks` the JSON
    Web Key Set fal publishes (or the mock's `/.well-known/jwks.json`).
    Raises `WebhookVerificationError` for a missing header, a timestamp more
    than `tolerance` seconds from `now` (a replay), a malformed signature, or
    one that no key of the set verifies.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    values = {}
    for name in _HEADERS:
        value = lowered.get(f"x-fal-webhook-{name}")
        if not value:
            raise WebhookVerificationError(f"missing header X-Fal-Webhook-{name.title()}")
        values[name] = value.strip()
    try:
        timestamp = int(values["timestamp"])
    except ValueError:
        raise WebhookVerificationError("X-Fal-Webhook-Timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"timestamp is {current - timestamp:+.0f} s from now (allowed: ±{tolerance:g} s):"
            " a stale or replayed webhook"
        )
    try:
        signature = bytes.fromhex(values["signature"])
    except ValueError:
        raise WebhookVerificationError("X-Fal-Webhook-Signature is not hex") from None
    message = "\n".join(
        [
            values["request-id"],
            values["user-id"],
            values["timestamp"],
            hashlib.sha256(body).hexdigest(),
        ]
    ).encode()
    # Imported here: a client that never verifies a webhook never loads cryptography.
    from cryptography.exceptions import InvalidSignature

    keys = _ed25519_keys(jwks)
    if not keys:
        raise WebhookVerificationError("the key set holds no Ed25519 key")
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        break
    else:
        raise WebhookVerificationError("the signature does not match any key of the set")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    if data.get("request_id") not in (None, values["request-id"]):
        raise WebhookVerificationError("the body's request_id is not the signed one")
    return data


def _ed25519_keys(jwks: Mapping[str, Any]) -> list[Ed25519PublicKey]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = []
    for entry in jwks.get("keys", []) if isinstance(jwks, Mapping) else []:
        if not isinstance(entry, Mapping) or entry.get("kty") != "OKP":
            continue
        if entry.get("crv") != "Ed25519" or not isinstance(entry.get("x"), str):
            continue
        try:
            raw = base64.urlsafe_b64decode(entry["x"] + "=" * (-len(entry["x"]) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (ValueError, binascii.Error):
            continue  # a malformed key verifies nothing
    return keys
