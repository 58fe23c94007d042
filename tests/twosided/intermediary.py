"""A small reference intermediary for the two-sided check, with switchable faults.

It does what the seed tutorial's reseller does: customers call it with
`Authorization: Bearer <customer key>`, it forwards to its fal upstream (here the
mock, official profile) with its own `Key`, and rewrites the upstream's request
URLs onto its own base. Each fault is one bug an intermediary can have:

- ``drop_param``: forwards the input without `seed`;
- ``double_submit``: "retries" every accepted submit once more (billed twice);
- ``leak_key``: answers with its upstream Authorization in a response header;
- ``cross_customers``: caches results per app instead of per request, and
  does not check who owns a request;
- ``swallow_cancel``: answers a cancel itself, never telling the upstream;
- ``mask_422``: turns the upstream's 422 into a 500.

Not a fault, but a documented habit some intermediaries have: ``add_default``
fills in `num_inference_steps` (fal's default) when the customer sent none.

Run in process (`create_intermediary(..., transport=AppTransport(mock_app))`)
or as a process: ``python tests/twosided/intermediary.py --upstream URL --port N``
with the keys in UPSTREAM_KEY and CUSTOMER_KEYS (comma-separated).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockserver.endpoints import parse_request_path

FAULTS = (
    "drop_param",
    "double_submit",
    "leak_key",
    "cross_customers",
    "swallow_cancel",
    "mask_422",
)
HABITS = ("add_default",)
#: Upstream answers that mean "nothing was created: try again".
_RETRYABLE = (429, 502, 503)
_RETRIES = 2
_PASSED_HEADERS = (
    "x-fal-request-id",
    "x-fal-error-type",
    "x-fal-request-timeout-type",
    "retry-after",
)


class Intermediary:
    """The proxy's state: customers, the owner of each request, the upstream."""

    def __init__(
        self,
        upstream: str,
        upstream_key: str,
        customer_keys: Iterable[str],
        faults: Iterable[str] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.faults = frozenset(faults)
        unknown = self.faults - set(FAULTS) - set(HABITS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        self.upstream = upstream.rstrip("/")
        self._upstream_auth = f"Key {upstream_key}"
        self._customers = {key: f"customer-{n}" for n, key in enumerate(customer_keys, 1)}
        self._owner: dict[str, str] = {}
        self._result_cache: dict[str, tuple[int, bytes]] = {}
        self.client = httpx.AsyncClient(transport=transport, timeout=30.0)
        #: Every upstream host it called (the tests prove it is only the mock).
        self.hosts_called: set[str] = set()

    def app(self) -> Starlette:
        """The customer-facing ASGI app."""
        return Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT"])]
        )

    async def _handle(self, request: Request) -> Response:
        customer = self._customer(request.headers.get("authorization", ""))
        if customer is None:
            return _json(401, b'{"detail":"Invalid or missing Bearer key"}')
        path = "/" + request.path_params["path"]
        route = parse_request_path(path)
        if route is None:
            if request.method != "POST":
                return _json(405, b'{"detail":"Method Not Allowed"}')
            return await self._submit(request, customer, path)
        owner = self._owner.get(route.request_id)
        if owner != customer and "cross_customers" not in self.faults:
            return _json(404, b'{"detail":"Request not found"}')
        if route.action == "cancel" and "swallow_cancel" in self.faults:
            return _json(202, b'{"status":"CANCELLATION_REQUESTED"}')
        if route.action == "result" and "cross_customers" in self.faults:
            cached = self._result_cache.get(route.app_id)
            if cached is not None:
                return self._answer(request, *cached, {})
        upstream = await self._call(request.method, path, params=dict(request.query_params))
        if route.action == "result" and upstream.status_code == 200:
            self._result_cache[route.app_id] = (200, upstream.content)
        return self._answer(request, upstream.status_code, upstream.content, upstream.headers)

    async def _submit(self, request: Request, customer: str, path: str) -> Response:
        body = await request.body()
        try:
            data: Any = json.loads(body) if body else None
        except ValueError:
            return _json(422, b'{"detail":"The body is not JSON"}')
        if isinstance(data, dict) and "drop_param" in self.faults:
            data.pop("seed", None)
        if isinstance(data, dict) and "add_default" in self.faults:
            data.setdefault("num_inference_steps", 4)
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-fal-")}
        params = dict(request.query_params)
        for _ in range(_RETRIES + 1):
            upstream = await self._call("POST", path, json=data, headers=headers, params=params)
            if upstream.status_code not in _RETRYABLE:
                break
        if upstream.status_code == 200 and "double_submit" in self.faults:
            # The bug: a "retry after a read timeout" that ignores the first success.
            upstream = await self._call("POST", path, json=data, headers=headers, params=params)
        if upstream.status_code == 200:
            self._owner[upstream.json()["request_id"]] = customer
        return self._answer(request, upstream.status_code, upstream.content, upstream.headers)

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        extra = kwargs.pop("headers", {})
        url = self.upstream + path
        self.hosts_called.add(httpx.URL(url).host)
        headers = {**extra, "Authorization": self._upstream_auth}
        return await self.client.request(method, url, headers=headers, **kwargs)

    def _answer(self, request: Request, status: int, content: bytes, headers: Any) -> Response:
        if status == 422 and "mask_422" in self.faults:
            status, content = 500, b'{"detail":"Internal Server Error"}'
        content = self._rewrite(content, str(request.base_url).rstrip("/"))
        passed = {k: v for k, v in headers.items() if k.lower() in _PASSED_HEADERS}
        if "leak_key" in self.faults:
            passed["X-Upstream-Authorization"] = self._upstream_auth
        return _json(status, content, passed)

    def _rewrite(self, content: bytes, own: str) -> bytes:
        # The seed tutorial's URL rewriting: the request URLs move onto our own
        # base; media URLs stay on the upstream (its CDN needs no key).
        try:
            data = json.loads(content)
        except ValueError:
            return content
        if not isinstance(data, dict):
            return content
        for name in ("response_url", "status_url", "cancel_url"):
            value = data.get(name)
            if isinstance(value, str) and value.startswith(self.upstream):
                data[name] = own + value.removeprefix(self.upstream)
        return json.dumps(data).encode()

    def _customer(self, authorization: str) -> str | None:
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._customers.get(key.strip())


def _json(status: int, content: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(content, status, headers, media_type="application/json")


def create_intermediary(
    upstream: str,
    upstream_key: str,
    customer_keys: Iterable[str],
    faults: Iterable[str] = (),
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[Intermediary, Starlette]:
    """The intermediary and its ASGI app."""
    proxy = Intermediary(upstream, upstream_key, customer_keys, faults, transport)
    return proxy, proxy.app()


def main() -> None:
    """Serve it: ``--upstream URL --port N [--fault NAME ...]``; keys from the environment."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fault", action="append", default=[], choices=FAULTS + HABITS)
    args = parser.parse_args()
    _, app = create_intermediary(
        args.upstream,
        os.environ["UPSTREAM_KEY"],
        os.environ["CUSTOMER_KEYS"].split(","),
        args.fault,
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
