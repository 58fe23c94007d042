"""The upstream mock's control API, as a load process calls it (blocking: gevent).

A two-sided load run drives an intermediary whose fal upstream is the mock.
Before the run the load asks the mock to count the run's markers; while it
runs, each process learns the upstream key's fingerprints from one job's
upstream request (to search customer answers for it); after the run the mock's
counts are judged with `mockserver.check.upstream.judge_jobs`. The answers are
read by the same functions `mockserver check` uses; only the HTTP differs
(Locust's gevent patches sockets, so a plain blocking client is cooperative).
"""

from __future__ import annotations

from typing import Any

import httpx

from mockserver.check.exchange import Exchange
from mockserver.check.upstream import (
    UpstreamRequest,
    about_path,
    health_problem,
    marked_from,
    marked_path,
    requests_from,
)


class ControlClient:
    """Blocking calls to the mock's control API (``BASE/_mock``); failures are data."""

    def __init__(self, control_url: str, timeout: float) -> None:
        self.url = control_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout)

    def call(self, method: str, path: str, body: Any = None) -> Exchange:
        """One control request as an `Exchange` (an error says why nothing came back)."""
        try:
            response = self._client.request(method, self.url + path, json=body)
        except httpx.HTTPError as exc:
            return Exchange(
                method, self.url + path, error=f"{type(exc).__name__}: {exc}", failure="transport"
            )
        return Exchange(
            method, self.url + path, response.status_code, response.headers, response.content
        )

    def connect(self) -> str | None:
        """What is wrong with the control API (None when the mock answers)."""
        return health_problem(self.call("GET", "/health"), self.url)

    def watch(self, prefix: str) -> str | None:
        """Ask the mock to count the markers ``<prefix>-<word>``; a problem as text."""
        answer = self.call("POST", "/markers", {"prefix": prefix})
        if answer.status_code == 200:
            return None
        return f"the mock at {self.url} would not count markers: {answer.describe()}"

    def marked(self, prefix: str) -> dict[str, list[dict[str, Any]]]:
        """Marker -> the upstream jobs the mock counted for it."""
        return marked_from(self.call("GET", marked_path(prefix)))

    def about(self, marker: str) -> list[UpstreamRequest] | None:
        """The upstream requests about one marker (while the request log holds them);
        None when the control API did not answer (nothing is known, not "none")."""
        answer = self.call("GET", about_path(marker))
        return requests_from(answer) if answer.status_code == 200 else None

    def close(self) -> None:
        """Close the connections."""
        self._client.close()
