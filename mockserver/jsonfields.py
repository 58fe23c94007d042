"""The one input rule of every control operation (HTTP control API and `fal_mock`).

Each control input is checked here before anything changes: numbers are finite
and inside a documented range, counts are bounded integers (kept as counters,
never expanded into lists), objects carry only known fields. A refused input
raises `InvalidControlInput`, which the control API answers with a 422.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

#: The largest `times` a scripted outcome or fault takes: a counter, so the
#: size costs nothing, but it stays a plain JSON-safe integer.
MAX_TIMES = 1_000_000_000
#: Durations a job phase, a retry hint or an outcome may take (one day).
MAX_DURATION_SECONDS = 86_400.0


class InvalidControlInput(ValueError):
    """A control operation's input is malformed or out of range; nothing was changed.

    A `ValueError` so that Python callers written against the older untyped
    errors keep working; the control API answers it with a 422.
    """


def json_object(data: Any, known: Collection[str], what: str) -> dict[str, Any]:
    """`data` as a dict with only `known` keys."""
    if not isinstance(data, dict):
        raise InvalidControlInput(f"{what} is a JSON object")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InvalidControlInput(f"unknown {what.split()[-1]} field(s): {', '.join(unknown)}")
    return data


def status_code(value: Any) -> int | None:
    """An optional HTTP error status (400-599)."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599
    ):
        raise InvalidControlInput("status_code must be an integer from 400 to 599")
    return value


def number(value: Any, name: str, low: float, high: float, unit: str = "") -> float:
    """A finite number (not a bool) from `low` to `high`."""
    # isfinite first: NaN compares false with everything, and a huge int
    # would overflow float() only after passing a comparison.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not low <= value <= high
        or not math.isfinite(value)
    ):
        raise InvalidControlInput(f"{name} must be a number{unit} from {low:g} to {high:g}")
    return float(value)


def count(value: Any, name: str, high: int = MAX_TIMES, *, none: str | None = None) -> int | None:
    """A positive integer up to `high`; None only when `none` says what it means."""
    if value is None and none is not None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        also = f", or null for {none}" if none is not None else ""
        raise InvalidControlInput(f"{name} must be an integer from 1 to {high}{also}")
    return value


def string(value: Any, name: str, max_length: int = 4096) -> str | None:
    """An optional string of at most `max_length` characters."""
    if value is not None and (not isinstance(value, str) or len(value) > max_length):
        raise InvalidControlInput(f"{name} must be a string of at most {max_length} characters")
    return value
