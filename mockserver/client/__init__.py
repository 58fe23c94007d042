"""The reference client: how a correct fal queue client behaves.

from mockserver.client import ClientSettings, FalClient
with FalClient(ClientSettings(base_url="http://127.0.0.1:8000", key="k")) as fal:
    output = fal.subscribe("fal-ai/flux-1/dev", {"prompt": "a cat"})
"""

from mockserver.client.aio import AsyncFalClient
from mockserver.client.errors import (
    FalError,
    FalHTTPError,
    FalProtocolError,
    FalTimeoutError,
    FalTransportError,
    FalValidationError,
)
from mockserver.client.protocol import ClientSettings
from mockserver.client.sync import FalClient
from mockserver.client.types import Completed, InProgress, Queued, QueueHandle, Status
from mockserver.client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "AsyncFalClient",
    "ClientSettings",
    "Completed",
    "FalClient",
    "FalError",
    "FalHTTPError",
    "FalProtocolError",
    "FalTimeoutError",
    "FalTransportError",
    "FalValidationError",
    "InProgress",
    "QueueHandle",
    "Queued",
    "Status",
    "WebhookVerificationError",
    "verify_webhook",
]
