from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.endpoints import (
    EndpointId,
    InvalidEndpointId,
    RequestRoute,
    parse_request_path,
    request_path,
    rewrite_url,
)


@pytest.mark.parametrize(
    ("text", "app_id", "path", "namespace"),
    [
        ("fal-ai/flux-1/dev", "fal-ai/flux-1", "dev", None),
        ("fal-ai/flux-pro/kontext/max/multi", "fal-ai/flux-pro", "kontext/max/multi", None),
        ("fal-ai/flux-1", "fal-ai/flux-1", None, None),
        ("workflows/fal-ai/wf/x", "workflows/fal-ai/wf", "x", "workflows"),
        ("comfy/me/graph", "comfy/me/graph", None, "comfy"),
        ("123-my-app", "123/my-app", None, None),
        ("/fal-ai/flux-1/dev/", "fal-ai/flux-1", "dev", None),
    ],
)
def test_parse_endpoint_ids(
    text: str, app_id: str, path: str | None, namespace: str | None
) -> None:
    endpoint = EndpointId.parse(text)
    assert endpoint.app_id == app_id
    assert endpoint.path == path
    assert endpoint.namespace == namespace


@pytest.mark.parametrize(
    "text",
    [
        "flux",
        "",
        "fal-ai//dev",
        "fal-ai/../etc",
        "workflows/only",
        "a/b c",
        "fal-ai/./x",
        "%2e%2e/x",
    ],
)
def test_invalid_endpoint_ids(text: str) -> None:
    with pytest.raises(InvalidEndpointId):
        EndpointId.parse(text)


def test_request_paths_use_only_owner_alias() -> None:
    app = EndpointId.parse("fal-ai/flux-pro/kontext/max/multi").app_id
    assert request_path(app, "r1") == "/fal-ai/flux-pro/requests/r1"
    assert request_path(app, "r1", "status") == "/fal-ai/flux-pro/requests/r1/status"
    assert request_path(app, "r1", "stream") == "/fal-ai/flux-pro/requests/r1/status/stream"
    assert request_path(app, "r1", "cancel") == "/fal-ai/flux-pro/requests/r1/cancel"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/fal-ai/flux-1/requests/abc", RequestRoute("fal-ai/flux-1", "abc", "result")),
        ("/fal-ai/flux-1/requests/abc/", RequestRoute("fal-ai/flux-1", "abc", "result")),
        ("/fal-ai/flux-1/requests/abc/status", RequestRoute("fal-ai/flux-1", "abc", "status")),
        ("/fal-ai/flux-1/requests/abc/status/", RequestRoute("fal-ai/flux-1", "abc", "status")),
        (
            "/fal-ai/flux-1/requests/abc/status/stream",
            RequestRoute("fal-ai/flux-1", "abc", "stream"),
        ),
        ("/fal-ai/flux-1/requests/abc/cancel/", RequestRoute("fal-ai/flux-1", "abc", "cancel")),
        ("/workflows/me/wf/requests/abc", RequestRoute("workflows/me/wf", "abc", "result")),
        ("/123-my-app/requests/abc", RequestRoute("123/my-app", "abc", "result")),
        ("/123/my-app/requests/abc/status", RequestRoute("123/my-app", "abc", "status")),
        # the full model path is not a request URL
        ("/fal-ai/flux-1/dev/requests/abc", None),
        ("/fal-ai/flux-1/requests", None),
        ("/fal-ai/flux-1/requests/abc/other", None),
        ("/fal-ai/flux-1/dev", None),
    ],
)
def test_parse_request_path(path: str, expected: RequestRoute | None) -> None:
    assert parse_request_path(path) == expected


def test_rewrite_moves_queue_urls_onto_the_base() -> None:
    url = "https://queue.fal.run/fal-ai/flux-1/requests/x/status?logs=1"
    assert (
        rewrite_url(url, "http://127.0.0.1:8000")
        == "http://127.0.0.1:8000/fal-ai/flux-1/requests/x/status?logs=1"
    )
    assert (
        rewrite_url(url, "https://proxy.example/fal/")
        == "https://proxy.example/fal/fal-ai/flux-1/requests/x/status?logs=1"
    )


_segment = st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True)


@given(
    segments=st.lists(_segment, min_size=1, max_size=5).map("/".join),
    query=st.one_of(st.just(""), st.from_regex(r"[a-z]{1,5}=[a-z0-9]{1,5}", fullmatch=True)),
    base=st.sampled_from(
        ["http://127.0.0.1:8000", "https://proxy.example/fal", "https://queue.fal.run"]
    ),
)
def test_rewrite_is_idempotent_and_keeps_path_and_query(
    segments: str, query: str, base: str
) -> None:
    url = f"https://queue.fal.run/{segments}" + (f"?{query}" if query else "")
    once = rewrite_url(url, base)
    assert rewrite_url(once, base) == once
    assert once.startswith(base.rstrip("/") + "/")
    assert once.endswith(f"/{segments}" + (f"?{query}" if query else ""))


@given(
    owner=_segment,
    alias=_segment,
    rest=st.lists(_segment, max_size=3),
    namespace=st.sampled_from([None, "workflows", "comfy"]),
)
def test_endpoint_id_round_trips(
    owner: str, alias: str, rest: list[str], namespace: str | None
) -> None:
    text = "/".join(([namespace] if namespace else []) + [owner, alias, *rest])
    endpoint = EndpointId.parse(text)
    assert str(endpoint) == text
    route = parse_request_path(request_path(endpoint.app_id, "id-1", "status"))
    assert route == RequestRoute(endpoint.app_id, "id-1", "status")


def test_an_owner_called_requests_is_still_an_owner() -> None:
    assert parse_request_path("/requests/requests/requests/x") == RequestRoute(
        "requests/requests", "x", "result"
    )
    assert parse_request_path("/requests/x/y") is None
