"""Judging submit answers: refused auth, validation errors, accepted requests, URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.results import Verdict
from mockserver.endpoints import origin_of, request_path

# The URLs a submit answer returns, and the protocol action each addresses.
URL_ACTIONS = {"response": "result", "status": "status", "cancel": "cancel"}

AUTH_KINDS = ("none", "wrong-key", "wrong-scheme")


def auth(kind: str, answer: Exchange) -> Finding:
    """`auth-<kind>`: a submit with missing/wrong auth should get 401 `{detail}`.

    Only a server error or no answer fails: every refusal leaves clients working,
    and a server that takes the request anyway breaks no client (a local mock
    without keys, or a proxy that adds its own key, does that on purpose), so
    that is a note for whoever exposes it to the internet.
    """
    check = f"auth-{kind}"
    body = answer.json_object()
    code = answer.status_code
    if code == 401 and body is not None and "detail" in body:
        return Finding.of(check, Verdict.PASS, "401 with a detail", answer)
    if answer.accepted:
        reason = (
            f"accepted a request with {kind} auth: fine for a local test server or a proxy that"
            " adds its own key, a hole for a public one (fal answers 401)"
        )
        return Finding.of(check, Verdict.NOTE, reason, answer)
    if code is not None and 400 <= code < 500:
        return Finding.of(check, Verdict.NOTE, f"refused with {code} (fal answers 401)", answer)
    reason = f"expected 401 {{detail}}, got {answer.describe()}"
    return Finding.of(check, Verdict.FAIL, reason, answer)


def validation(fields: list[str], answer: Exchange) -> Finding:
    """`validation-422`: an invalid input gets 422 with a `detail` entry naming each field."""
    check = "validation-422"
    if answer.accepted:
        return Finding.of(check, Verdict.FAIL, "accepted an invalid input", answer)
    if answer.status_code != 422:
        return Finding.of(check, Verdict.FAIL, f"expected 422, got {answer.describe()}", answer)
    body = answer.json_object()
    detail = body.get("detail") if body else None
    if not isinstance(detail, list) or not detail:
        reason = "422 without a `detail` list of problems"
        return Finding.of(check, Verdict.FAIL, reason, answer)
    well_formed = all(
        isinstance(entry, dict)
        and isinstance(entry.get("loc"), list)
        and isinstance(entry.get("msg"), str)
        and isinstance(entry.get("type"), str)
        for entry in detail
    )
    if not well_formed:
        return Finding.of(check, Verdict.FAIL, "a `detail` entry lacks loc/msg/type", answer)
    named = {str(part) for entry in detail for part in entry["loc"][1:2]}
    missing = [name for name in fields if name not in named]
    if missing:
        reason = f"`detail` does not name {', '.join(missing)} (names: {sorted(named)})"
        return Finding.of(check, Verdict.FAIL, reason, answer)
    return Finding.of(check, Verdict.PASS, f"422 naming {', '.join(fields)}", answer)


def request_id_of(answer: Exchange) -> str | None:
    """The request id of an accepted submit, else None."""
    body = answer.json_object()
    request_id = body.get("request_id") if body else None
    return request_id if answer.status_code == 200 and isinstance(request_id, str) else None


def accepted(answer: Exchange) -> Finding:
    """`submit-accepted`: a valid submit gets 200 with a request id."""
    request_id = request_id_of(answer)
    if request_id is None:
        reason = f"expected 200 with a request_id, got {answer.describe()}"
        return Finding.of("submit-accepted", Verdict.FAIL, reason, answer)
    return Finding.of("submit-accepted", Verdict.PASS, f"200, request {request_id}", answer)


def returned_urls(answer: Exchange) -> dict[str, Any]:
    """`{response, status, cancel}` -> the `*_url` values of a submit answer (maybe absent)."""
    body = answer.json_object() or {}
    return {name: body.get(f"{name}_url") for name in URL_ACTIONS}


def url_shape(answer: Exchange, app_id: str) -> Finding:
    """`url-shape`: the returned URLs exist and address the request by owner/alias only."""
    request_id = request_id_of(answer) or ""
    returned = returned_urls(answer)
    missing = [f"{name}_url" for name, url in returned.items() if not isinstance(url, str)]
    if missing:
        reason = f"the submit answer lacks {', '.join(missing)}: clients must build them"
        return Finding.of("url-shape", Verdict.FAIL, reason, answer)
    wrong = []
    for name, url in returned.items():
        want = request_path(app_id, request_id, URL_ACTIONS[name])  # type: ignore[arg-type]
        got = urlsplit(url).path
        if not got.endswith(want):  # a base path prefix is fine; a longer id is not
            wrong.append(f"{name}_url path {got} (fal: {want})")
    if wrong:
        return Finding.of("url-shape", Verdict.FAIL, "; ".join(wrong), answer)
    return Finding.of("url-shape", Verdict.PASS, f"owner/alias only ({app_id})", answer)


def url_origin(answer: Exchange, base_url: str) -> Finding:
    """`url-origin`: returned URLs on the server's own origin (else a note: callers rewrite)."""
    returned = [url for url in returned_urls(answer).values() if isinstance(url, str)]
    origins = {origin_of(url) for url in returned}
    base = origin_of(base_url)
    if origins <= {base}:
        return Finding.of("url-origin", Verdict.PASS, f"returned URLs are on {base}", answer)
    reason = (
        f"returned URLs are on {', '.join(sorted(origins))}, not on {base}:"
        " callers must rewrite them (done here)"
    )
    return Finding.of("url-origin", Verdict.NOTE, reason, answer)


def auth_scheme(scheme: str, answer: Exchange) -> Finding:
    """`auth-scheme`: fal takes `Key`; another accepted scheme is a note."""
    if scheme == "Bearer":
        reason = "takes `Authorization: Bearer <key>`; fal takes `Key <key>`"
        return Finding.of("auth-scheme", Verdict.NOTE, reason, answer)
    return Finding.of("auth-scheme", Verdict.PASS, "takes `Authorization: Key <key>`", answer)


def gateway_id(answer: Exchange) -> Finding:
    """`gateway-request-id`: fal's submit answer names the request at its gateway too.

    fal's answers (and webhook bodies) carry `gateway_request_id` beside
    `request_id`. Neither official client reads it (fal-client 1.0.3,
    @fal-ai/client 1.10.1), so a server without it breaks no client: a note,
    for code written against fal's docs.
    """
    check = "gateway-request-id"
    body = answer.json_object() or {}
    value = body.get("gateway_request_id")
    if isinstance(value, str) and value:
        return Finding.of(check, Verdict.PASS, "gateway_request_id beside request_id", answer)
    if "gateway_request_id" not in body:
        reason = (
            "no gateway_request_id (fal sends one; the official clients do not read it,"
            " code written against fal's docs may)"
        )
        return Finding.of(check, Verdict.NOTE, reason, answer)
    reason = f"gateway_request_id is {value!r}, not a string id as fal's (no client reads it)"
    return Finding.of(check, Verdict.NOTE, reason, answer)
