"""Counting accepted submits per marker, for runs longer than the request log.

A two-sided load run puts ``<prefix>-<n>`` in the input of its n-th request
and asks the mock to watch the prefix. Every submit the mock accepts (a job:
what fal would bill) whose input holds a watched prefix's marker is then
counted under that marker, with its request id, key fingerprint, a digest of
each input field (`field_digests`: what reached the upstream, compared field
by field without keeping the values) and the cancels it later received. Unlike
the request log this keeps no bodies, and unlike the jobs it outlives the
retention of their inputs; with nothing watched it costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping
from typing import Any

from mockserver.jsonfields import InvalidControlInput

_MAX_PREFIXES = 16
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{4,64}$")


def marker_pattern(prefix: str) -> re.Pattern[str]:
    """The markers ``<prefix>-<word>`` of one watched prefix, wherever they occur in a text."""
    return re.compile(re.escape(prefix) + r"-\w+")


def field_digests(payload: Any) -> dict[str, str]:
    """Each top-level field of a JSON object input -> a short digest of its value.

    The checker computes the same digests of what it sent: equal digests mean
    the field arrived unchanged, and no value (a prompt, a URL with a token)
    needs to be kept or shown.
    """
    if not isinstance(payload, Mapping):
        return {}
    return {
        str(name): hashlib.sha256(
            json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()[:16]
        for name, value in payload.items()
    }


class MarkerWatch:
    """The watched prefixes and, for each, the jobs per marker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._patterns: dict[str, re.Pattern[str]] = {}
        # request id -> its counted job(s): a cancel is found without a scan.
        self._jobs: dict[str, list[dict[str, Any]]] = {}

    def watch(self, prefix: str) -> None:
        """Start counting markers ``<prefix>-<word>``; InvalidControlInput for a bad prefix."""
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise InvalidControlInput("'prefix' must be 4 to 64 letters, digits, '_', '.' or '-'")
        with self._lock:
            if prefix not in self._seen and len(self._seen) >= _MAX_PREFIXES:
                raise InvalidControlInput(f"at most {_MAX_PREFIXES} prefixes are watched at once")
            self._seen.setdefault(prefix, {})
            self._patterns[prefix] = marker_pattern(prefix)

    def observe(self, payload: Any, request_id: str, key_fingerprint: str) -> None:
        """Count an accepted submit under every watched marker its input holds."""
        if not self._patterns:  # the hot path: nothing watched
            return
        text = json.dumps(payload, ensure_ascii=False)
        with self._lock:
            for prefix, pattern in self._patterns.items():
                for marker in dict.fromkeys(pattern.findall(text)):
                    job: dict[str, Any] = {
                        "request_id": request_id,
                        "key_fingerprint": key_fingerprint,
                        "fields": field_digests(payload),
                        "cancels": 0,
                    }
                    self._seen[prefix].setdefault(marker, []).append(job)
                    self._jobs.setdefault(request_id, []).append(job)

    def cancelled(self, request_id: str) -> None:
        """Count a cancel the upstream received for a counted job (answered 202 or 400)."""
        if not self._jobs:  # the hot path: nothing counted
            return
        with self._lock:
            for job in self._jobs.get(request_id, ()):
                job["cancels"] += 1

    def seen(self, prefix: str) -> dict[str, list[dict[str, Any]]] | None:
        """Marker -> the jobs it was counted for (None when `prefix` is not watched)."""
        with self._lock:
            found = self._seen.get(prefix)
            if found is None:
                return None
            # Copies: the answer is serialised after the lock is let go.
            return {m: [dict(job) for job in jobs] for m, jobs in found.items()}

    def clear(self) -> None:
        """Watch nothing."""
        with self._lock:
            self._seen.clear()
            self._patterns.clear()
            self._jobs.clear()
