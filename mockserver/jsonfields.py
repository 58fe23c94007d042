"""Checks for the small JSON objects of the control API (outcomes, faults)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def json_object(data: Any, known: Collection[str], what: str) -> dict[str, Any]:
    """`data` as a dict with only `known` keys; ValueError names what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} is a JSON object")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown {what.split()[-1]} field(s): {', '.join(unknown)}")
    return data


def status_code(value: Any) -> int | None:
    """An optional HTTP error status (400-599)."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599
    ):
        raise ValueError("status_code must be an integer from 400 to 599")
    return value


def number(value: Any, name: str, low: float, high: float, unit: str = "") -> float:
    """A number (not a bool) from `low` to `high`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number{unit} from {low:g} to {high:g}")
    return float(value)
