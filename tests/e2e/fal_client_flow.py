"""Run by test_official_fal_client: the official fal-client, unchanged, against the mock.

fal-client reads FAL_KEY and FAL_QUEUE_RUN_HOST/FAL_RUN_HOST at import time and
always speaks https, so the test starts the mock with TLS and runs this script
in a subprocess with those variables set. Prints one JSON line of findings.
"""

from __future__ import annotations

import json

import fal_client

ENDPOINT = "fal-ai/flux-1/dev"

handle = fal_client.submit(ENDPOINT, arguments={"prompt": "from fal-client", "num_images": 2})
updates: list[str] = []
result = fal_client.subscribe(
    ENDPOINT,
    arguments={"prompt": "subscribed", "seed": 7},
    with_logs=True,
    on_queue_update=lambda update: updates.append(type(update).__name__),
)
status = handle.status(with_logs=True)
first = handle.get()
ran = fal_client.run("fal-ai/flux-1/schnell", arguments={"prompt": "sync run"})
try:
    fal_client.submit(ENDPOINT, arguments={"num_images": 2})
    validation = None
except fal_client.client.FalClientHTTPError as exc:
    validation = exc.status_code
print(
    json.dumps(
        {
            "status": type(status).__name__,
            "first_images": len(first["images"]),
            "subscribed_seed": result["seed"],
            "updates": sorted(set(updates)),
            "run_prompt": ran["prompt"],
            "validation": validation,
        }
    )
)
