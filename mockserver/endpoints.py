"""Endpoint ids, request URLs and URL rewriting: pure functions, no I/O.

An endpoint id is ``owner/alias[/path...]`` (optionally behind a ``workflows``
or ``comfy`` namespace, or a one-segment ``123-my-app``). Submits go to the full
id; everything about a request afterwards uses only ``[namespace/]owner/alias``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

NAMESPACES = frozenset({"workflows", "comfy"})
_ONE_SEGMENT = re.compile(r"^([0-9]+)-([a-zA-Z0-9-]+)$")
# Conservative segment syntax: rules out "..", ".", empty segments, encoded
# slashes and anything else that could make a path mean two things.
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._~-]*$")

Action = Literal["result", "status", "stream", "cancel"]
_ACTIONS: dict[tuple[str, ...], Action] = {
    (): "result",
    ("status",): "status",
    ("status", "stream"): "stream",
    ("cancel",): "cancel",
}
_SUFFIXES: dict[Action, str] = {
    "result": "",
    "status": "/status",
    "stream": "/status/stream",
    "cancel": "/cancel",
}


class InvalidEndpointId(ValueError):
    """The text is not a well-formed endpoint id."""


@dataclass(frozen=True, slots=True)
class EndpointId:
    """A parsed endpoint id: ``[namespace/]owner/alias[/path]``."""

    owner: str
    alias: str
    path: str | None = None
    namespace: str | None = None

    @classmethod
    def parse(cls, value: str) -> EndpointId:
        """Parse an endpoint id as the official clients do; raise `InvalidEndpointId`."""
        return _parse_endpoint_id(value)

    @classmethod
    def _parse(cls, value: str) -> EndpointId:
        parts = value.strip("/").split("/")
        if len(parts) == 1:
            match = _ONE_SEGMENT.match(parts[0])
            if not match:
                raise InvalidEndpointId(
                    f"invalid endpoint id {value!r}: expected 'owner/alias[/path]'"
                    " or a one-segment '<number>-<alias>'"
                )
            parts = [match.group(1), match.group(2)]
        for part in parts:
            if not _SEGMENT.match(part):
                raise InvalidEndpointId(f"invalid endpoint id {value!r}: bad segment {part!r}")
        namespace = None
        if parts[0] in NAMESPACES:
            namespace, parts = parts[0], parts[1:]
            if len(parts) < 2:
                raise InvalidEndpointId(
                    f"invalid endpoint id {value!r}: '{namespace}/' must be followed by owner/alias"
                )
        path = "/".join(parts[2:]) or None
        return cls(owner=parts[0], alias=parts[1], path=path, namespace=namespace)

    @property
    def app_id(self) -> str:
        """``[namespace/]owner/alias``: the part request URLs are built on."""
        base = f"{self.owner}/{self.alias}"
        return f"{self.namespace}/{base}" if self.namespace else base

    def __str__(self) -> str:
        return f"{self.app_id}/{self.path}" if self.path else self.app_id


@lru_cache(maxsize=4096)
def _parse_endpoint_id(value: str) -> EndpointId:
    # Cached: every request parses its app id, and servers see few distinct ones.
    return EndpointId._parse(value)


def request_path(app_id: str, request_id: str, action: Action = "result") -> str:
    """The path of a request operation, e.g. ``/fal-ai/flux-1/requests/<id>/status``."""
    return f"/{app_id}/requests/{request_id}{_SUFFIXES[action]}"


@dataclass(frozen=True, slots=True)
class RequestRoute:
    """What a request-operation path addresses."""

    app_id: str
    request_id: str
    action: Action


@lru_cache(maxsize=8192)
def parse_request_path(path: str) -> RequestRoute | None:
    """Recognise ``/<app>/requests/<id>[/status[/stream]|/cancel][/]``.

    Returns None when the path is not a request operation (then it may be a
    submit). The app part is validated like an endpoint id; the id is returned
    as written so that the caller can say precisely what was wrong with it.
    """
    segments = path.strip("/").split("/")
    if segments[0] in NAMESPACES:
        size = 3
    elif len(segments) > 1 and segments[1] == "requests" and _ONE_SEGMENT.match(segments[0]):
        size = 1
    else:
        size = 2
    if len(segments) < size + 2 or segments[size] != "requests":
        return None
    action = _ACTIONS.get(tuple(segments[size + 2 :]))
    if action is None:
        return None
    try:
        endpoint = EndpointId.parse("/".join(segments[:size]))
    except InvalidEndpointId:
        return None
    return RequestRoute(app_id=endpoint.app_id, request_id=segments[size + 1], action=action)


def full_id_request_path(path: str) -> str | None:
    """For a request operation addressed by the *full* endpoint id
    (``/fal-ai/flux-1/dev/requests/<id>/status``), the path fal uses
    (``/fal-ai/flux-1/requests/<id>/status``); None for any other path."""
    segments = path.strip("/").split("/")
    for index in range(3, len(segments) - 1):
        if segments[index] != "requests":
            continue
        action = _ACTIONS.get(tuple(segments[index + 2 :]))
        if action is None:
            return None
        try:
            endpoint = EndpointId.parse("/".join(segments[:index]))
        except InvalidEndpointId:
            return None
        return request_path(endpoint.app_id, segments[index + 1], action)
    return None


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def rewrite_url(url: str, base_url: str) -> str:
    """Move `url` onto `base_url`, keeping its path and query.

    This is what callers of an intermediary must do with the
    ``https://queue.fal.run/...`` URLs it returns. A base URL may carry a path
    prefix (``https://proxy.example/fal``); a URL already on the base is
    returned unchanged, so rewriting is idempotent.
    """
    base = urlsplit(base_url.rstrip("/"))
    target = urlsplit(url)
    if (target.scheme, target.netloc) == (base.scheme, base.netloc) and (
        target.path == base.path or target.path.startswith(base.path + "/")
    ):
        return url
    return urlunsplit((base.scheme, base.netloc, base.path + target.path, target.query, ""))
