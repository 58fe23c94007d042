"""The application under test: it knows nothing about mocks."""

from __future__ import annotations

import os
import time

import fal_client
import httpx

INTERMEDIARY_URL = os.environ.get("INTERMEDIARY_URL", "https://api.intermediary.example")


def thumbnail(prompt: str) -> bytes:
    """Generate a square image with fal and download it."""
    result = fal_client.subscribe(
        "fal-ai/flux-1/schnell", arguments={"prompt": prompt, "image_size": "square"}
    )
    return httpx.get(result["images"][0]["url"]).content


def thumbnail_via_intermediary(prompt: str, key: str) -> dict:
    """The same through an intermediary: Bearer auth, queue.fal.run URLs to rewrite."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(headers=headers, timeout=30) as http:
        queued = http.post(f"{INTERMEDIARY_URL}/fal-ai/flux-1/dev", json={"prompt": prompt}).json()
        status_url = queued["status_url"].replace("https://queue.fal.run", INTERMEDIARY_URL)
        while http.get(status_url).json()["status"] != "COMPLETED":
            time.sleep(0.5)
        result_url = queued["response_url"].replace("https://queue.fal.run", INTERMEDIARY_URL)
        return http.get(result_url).json()
