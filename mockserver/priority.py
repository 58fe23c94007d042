"""The queue priority vocabulary (``X-Fal-Queue-Priority``), named once.

Pure: the server's queue and the reference client both read it, and the
client must not import the server to do so.
"""

from __future__ import annotations

from typing import Literal, get_args

#: A request's place in its app's queue: "low" ones are overtaken by "normal" ones.
Priority = Literal["normal", "low"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
#: The header a submit names its priority in.
PRIORITY_HEADER = "X-Fal-Queue-Priority"


def parse_priority(value: str | None) -> Priority | None:
    """The priority a header value names (absent: "normal"), or None when it names none."""
    if value is None:
        return "normal"
    lowered = value.strip().lower()
    for priority in PRIORITIES:
        if lowered == priority:
            return priority
    return None
