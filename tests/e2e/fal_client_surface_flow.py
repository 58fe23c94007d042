"""Run by test_client_surface: fal-client's stream, upload and realtime against `serve`.

fal-client reads FAL_RUN_HOST at import time (stream and realtime follow it)
but hard-codes its storage and token host (https://rest.fal.ai) and CDN
(https://v3.fal.media): those two constants are pointed at the mock here,
which is what a test of an app using them would do. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import fal_client
import fal_client.client
import httpx

BASE = os.environ["MOCK_BASE_URL"]
fal_client.client.REST_URL = BASE
fal_client.client.CDN_URL = BASE
ENDPOINT = "fal-ai/flux-1/schnell"

streamed = list(fal_client.stream(ENDPOINT, arguments={"prompt": "streamed", "seed": 2}))


async def async_stream() -> list[dict[str, Any]]:
    client = fal_client.AsyncClient()
    return [event async for event in client.stream(ENDPOINT, arguments={"prompt": "async"})]


cdn_url = fal_client.upload(b"cdn bytes", "text/plain", file_name="a.txt")
storage_url = fal_client.upload(b"storage bytes", "text/plain", repository="fal")
verify = os.environ["SSL_CERT_FILE"]

realtime: list[Any] = []
with fal_client.realtime(ENDPOINT) as connection:  # a token from /tokens/, then wss
    connection.send({"prompt": "over a token", "seed": 9})
    realtime.append(connection.recv())
with fal_client.realtime(ENDPOINT, use_jwt=False) as connection:  # the key on the handshake
    connection.send({"num_images": 1})
    try:
        connection.recv()
        refused = None
    except fal_client.client.RealtimeError as exc:
        refused = exc.error
    connection.send({"prompt": "after an error"})
    realtime.append(connection.recv())

print(
    json.dumps(
        {
            "streamed": [e.get("progress", e.get("prompt")) for e in streamed],
            "async_last": asyncio.run(async_stream())[-1]["prompt"],
            "cdn": httpx.get(cdn_url, verify=verify).text,
            "storage": httpx.get(storage_url, verify=verify).text,
            "realtime": [(r["prompt"], r["seed"]) for r in realtime[:1]]
            + [r["prompt"] for r in realtime[1:]],
            "refused": refused,
        }
    )
)
