"""Counting accepted submits per marker, for runs longer than the request log.

A two-sided load run puts ``<prefix>-<n>`` in the input of its n-th request
and asks the mock to watch the prefix. Every submit the mock accepts (a job:
what fal would bill) whose input holds a watched prefix's marker is then
counted under that marker, with its request id and key fingerprint. Unlike
the request log this keeps no bodies, and unlike the jobs it outlives the
retention of their inputs; with nothing watched it costs nothing.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from mockserver.jsonfields import InvalidControlInput

_MAX_PREFIXES = 16
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{4,64}$")


class MarkerWatch:
    """The watched prefixes and, for each, the jobs per marker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, dict[str, list[dict[str, str]]]] = {}
        self._patterns: dict[str, re.Pattern[str]] = {}

    def watch(self, prefix: str) -> None:
        """Start counting markers ``<prefix>-<word>``; InvalidControlInput for a bad prefix."""
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise InvalidControlInput("'prefix' must be 4 to 64 letters, digits, '_', '.' or '-'")
        with self._lock:
            if prefix not in self._seen and len(self._seen) >= _MAX_PREFIXES:
                raise InvalidControlInput(f"at most {_MAX_PREFIXES} prefixes are watched at once")
            self._seen.setdefault(prefix, {})
            self._patterns[prefix] = re.compile(re.escape(prefix) + r"-\w+")

    def observe(self, payload: Any, request_id: str, key_fingerprint: str) -> None:
        """Count an accepted submit under every watched marker its input holds."""
        if not self._patterns:  # the hot path: nothing watched
            return
        text = json.dumps(payload, ensure_ascii=False)
        with self._lock:
            for prefix, pattern in self._patterns.items():
                for marker in dict.fromkeys(pattern.findall(text)):
                    self._seen[prefix].setdefault(marker, []).append(
                        {"request_id": request_id, "key_fingerprint": key_fingerprint}
                    )

    def seen(self, prefix: str) -> dict[str, list[dict[str, str]]] | None:
        """Marker -> the jobs it was counted for (None when `prefix` is not watched)."""
        with self._lock:
            found = self._seen.get(prefix)
            return None if found is None else {m: list(jobs) for m, jobs in found.items()}

    def clear(self) -> None:
        """Watch nothing."""
        with self._lock:
            self._seen.clear()
            self._patterns.clear()
