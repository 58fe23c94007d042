"""The mock's one JSON encoding: compact, as fal's answers are.

Used by the HTTP layer for every answer, and by the service for what it keeps
already encoded (results are stored as the bytes a result fetch serves).
"""

from __future__ import annotations

import json
from typing import Any

_ENCODER = json.JSONEncoder(separators=(",", ":"))


def compact_json(value: Any) -> bytes:
    """`value` as compact JSON bytes."""
    return _ENCODER.encode(value).encode()
