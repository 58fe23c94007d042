"""Live checks of fal's surface beyond the queue: output streams, uploads, start deadlines.

Optional in the sense fal's clients use them: a target that does not offer a
surface (404/405 where fal would answer) gets a note, "not offered", never a
failure. Where it is offered, it must behave as fal does. The run and REST
hosts are derived from the base URL as the reference client does: fal's own
hosts for ``https://queue.fal.run``, else ``{base}/_run`` and ``{base}``.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.http import exchange
from mockserver.check.pacing import Deadline, within
from mockserver.check.results import Verdict
from mockserver.client.protocol import ClientSettings
from mockserver.endpoints import request_path

if TYPE_CHECKING:
    from mockserver.check.unit import Unit as _Unit

_NOT_OFFERED = frozenset({404, 405, 501})


def _hosts(unit: _Unit) -> ClientSettings:
    return ClientSettings(base_url=unit.target.base_url)


async def output_stream(unit: _Unit) -> None:
    """``POST {run}/{endpoint}/stream``: an event stream whose last event is the output."""
    url = f"{_hosts(unit).run_base}/{unit.model.endpoint_id}/stream"
    record = Exchange("POST", url)
    events: list[Any] = []

    async def read() -> None:
        async with unit.checker.client.stream(
            "POST", url, json=unit.input, headers=unit.target.auth()
        ) as response:
            record.status_code = response.status_code
            record.headers = {k.lower(): v for k, v in response.headers.items()}
            if response.status_code != 200 or not _is_event_stream(response.headers):
                record.body = await response.aread()
                return
            buffer = ""
            async for text in response.aiter_text():
                buffer += text.replace("\r\n", "\n")
                while "\n\n" in buffer:
                    raw, buffer = buffer.split("\n\n", 1)
                    data = "\n".join(
                        line[5:].lstrip() for line in raw.split("\n") if line.startswith("data:")
                    )
                    if data:
                        events.append(_json_or_text(data))

    unit.checker.report.submits += 1
    try:
        await within(unit.pacer, unit.settings.job_timeout, read())
    except Deadline as exc:
        record.error = f"timed out: {exc}"
    except Exception as exc:  # transport errors are findings, not crashes
        record.error = f"{type(exc).__name__}: {exc}"
    if record.status_code in _NOT_OFFERED:
        unit.add(
            Finding.of("stream-offered", Verdict.NOTE, f"not offered ({record.describe()})", record)
        )
        return
    if record.status_code != 200 or not _is_event_stream(record.headers):
        reason = f"expected 200 text/event-stream, got {record.describe()}"
        unit.add(Finding.of("stream-answer", Verdict.FAIL, reason, record))
        return
    record.body = "\n".join(json.dumps(e) for e in events).encode()
    unit.add(
        Finding.of(
            "stream-answer", Verdict.PASS, f"text/event-stream, {len(events)} event(s)", record
        )
    )
    last = events[-1] if events else None
    if not isinstance(last, dict) or not all(isinstance(e, dict) for e in events):
        reason = "the events are not all JSON objects" if events else "no events before the close"
        unit.add(Finding.of("stream-output", Verdict.FAIL, reason, record))
        return
    errors = list(Draft202012Validator(unit.model.output_schema).iter_errors(last))
    if errors:
        reason = f"the last event is not the model's output: {errors[0].message}"
        unit.add(Finding.of("stream-output", Verdict.FAIL, reason, record))
    else:
        reason = f"the last of {len(events)} event(s) is the full output"
        unit.add(Finding.of("stream-output", Verdict.PASS, reason, record))
    if record.header("x-fal-request-id") is None:
        unit.add(
            Finding.of("stream-request-id", Verdict.NOTE, "no X-Fal-Request-Id header", record)
        )
    else:
        unit.add(Finding.of("stream-request-id", Verdict.PASS, "X-Fal-Request-Id present", record))


async def upload(unit: _Unit) -> None:
    """Initiate a signed-URL upload, PUT bytes, read them back from the file URL."""
    checker = unit.checker
    url = f"{_hosts(unit).rest_base}/storage/upload/initiate?storage_type=fal-cdn-v3"
    payload = f"fal-queue-harness check {uuid.uuid4().hex}\n".encode()
    body = {"content_type": "text/plain", "file_name": "check.txt"}
    initiated = await unit.call("POST", url, body=body)
    if initiated.status_code in _NOT_OFFERED:
        unit.add(
            Finding.of(
                "upload-offered", Verdict.NOTE, f"not offered ({initiated.describe()})", initiated
            )
        )
        return
    urls = initiated.json_object()
    if (
        initiated.status_code != 200
        or urls is None
        or not all(isinstance(urls.get(k), str) for k in ("upload_url", "file_url"))
    ):
        reason = f"expected 200 with upload_url and file_url, got {initiated.describe()}"
        unit.add(Finding.of("upload-initiate", Verdict.FAIL, reason, initiated))
        return
    unit.add(Finding.of("upload-initiate", Verdict.PASS, "upload_url and file_url", initiated))
    timeout = unit.settings.request_timeout

    async def put() -> Exchange:
        record = Exchange("PUT", urls["upload_url"])
        try:
            # The upload URL is the permission: no key goes with the bytes.
            answer = await checker.client.put(
                urls["upload_url"], content=payload, headers={"Content-Type": "text/plain"}
            )
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            return record
        record.status_code, record.body = answer.status_code, answer.content
        record.headers = {k.lower(): v for k, v in answer.headers.items()}
        return record

    try:
        stored = await within(unit.pacer, timeout, put())
    except Deadline as exc:
        stored = Exchange("PUT", urls["upload_url"], error=f"timed out: {exc}")
    if stored.status_code is None or not 200 <= stored.status_code < 300:
        unit.add(
            Finding.of(
                "upload-roundtrip", Verdict.FAIL, f"the PUT failed: {stored.describe()}", stored
            )
        )
        return
    fetched = await exchange(checker.client, unit.pacer, timeout, "GET", urls["file_url"])
    if fetched.status_code == 200 and fetched.body == payload:
        unit.add(
            Finding.of(
                "upload-roundtrip", Verdict.PASS, "the file URL serves the exact bytes", fetched
            )
        )
    else:
        reason = f"the file URL does not serve the uploaded bytes ({fetched.describe()})"
        unit.add(Finding.of("upload-roundtrip", Verdict.FAIL, reason, fetched))


def _is_event_stream(headers: Any) -> bool:
    return bool(headers) and str(headers.get("content-type", "")).startswith("text/event-stream")


def _json_or_text(data: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        return data


async def start_deadline(unit: _Unit, seconds: float) -> None:
    """Submit with ``X-Fal-Request-Timeout``: a time-to-start deadline, never a run limit.

    A run that started is not cut off; one that did not start in time ends
    with 504 and ``X-Fal-Request-Timeout-Type: user`` (what the official
    clients read as "do not retry").
    """
    base = unit.target.base_url.rstrip("/")
    headers = {**unit.target.auth(), "X-Fal-Request-Timeout": f"{seconds:g}"}
    timeout = unit.settings.request_timeout
    url = f"{base}/{unit.model.endpoint_id}"
    submitted = await exchange(
        unit.checker.client, unit.pacer, timeout, "POST", url, headers=headers, body=unit.input
    )
    unit.checker.report.submits += 1
    answer = submitted.json_object() or {}
    request_id = answer.get("request_id")
    if submitted.status_code != 200 or not isinstance(request_id, str):
        reason = f"a submit with X-Fal-Request-Timeout was refused: {submitted.describe()}"
        unit.add(Finding.of("start-deadline", Verdict.FAIL, reason, submitted))
        return
    # URLs built from the endpoint id, as the JS client does (no rewriting needed).
    request_url = base + request_path(unit.app_id, request_id)
    started = unit.pacer.now()
    ran = False
    while True:
        polled = await unit.call("GET", request_url + "/status")
        state = (polled.json_object() or {}).get("status")
        ran = ran or state == "IN_PROGRESS"
        if state == "COMPLETED":
            break
        if (
            state not in ("IN_QUEUE", "IN_PROGRESS")
            or unit.pacer.now() - started > unit.settings.job_timeout
        ):
            reason = f"no COMPLETED status: {polled.describe()}"
            unit.add(Finding.of("start-deadline", Verdict.FAIL, reason, polled))
            return
        await unit.pacer.sleep(unit.settings.poll_interval)
    result = await unit.call("GET", request_url)
    kind = result.header("x-fal-request-timeout-type")
    if result.status_code == 200:
        reason = f"started within {seconds:g} s and ran to its end" + (
            " (a run longer than the deadline was not cut off)" if ran else ""
        )
        unit.add(Finding.of("start-deadline", Verdict.PASS, reason, result))
    elif result.status_code == 504 and ran:
        reason = "a run that had started was cut off: the deadline is time-to-start only"
        unit.add(Finding.of("start-deadline", Verdict.FAIL, reason, result))
    elif result.status_code == 504 and kind == "user":
        reason = "did not start in time: 504 with X-Fal-Request-Timeout-Type: user"
        unit.add(Finding.of("start-deadline", Verdict.PASS, reason, result))
    else:
        reason = (
            f"expected the output, or 504 with X-Fal-Request-Timeout-Type: user;"
            f" got {result.describe()}"
        )
        unit.add(Finding.of("start-deadline", Verdict.FAIL, reason, result))
