"""Judging results: the answer, its schema, its fidelity to the input."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from mockserver.catalog import Model, preset_size
from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding

# The media judgements live in `judge.media`; a load test's user calls these two here.
from mockserver.check.judge.media import Fetched as Fetched
from mockserver.check.judge.media import media_bytes as media_bytes
from mockserver.check.judge.media import media_download as media_download
from mockserver.check.results import Verdict


def result(answer: Exchange, request_id: str) -> Finding:
    """`result`: a completed request's result is 200 JSON, tagged with its id if at all."""
    if answer.status_code != 200 or answer.json_object() is None:
        reason = f"expected 200 with a JSON object, got {answer.describe()}"
        return Finding.of("result", Verdict.FAIL, reason, answer)
    header = answer.header("x-fal-request-id")
    if header not in (None, request_id):
        reason = f"X-Fal-Request-Id {header!r} is not the request's id"
        return Finding.of("result", Verdict.FAIL, reason, answer)
    return Finding.of("result", Verdict.PASS, "200 with the output", answer)


def output_schema(answer: Exchange, schema: dict[str, Any]) -> Finding:
    """`output-schema`: the result validates against the model's output schema."""
    body = answer.json_object()
    errors = sorted(
        Draft202012Validator(schema).iter_errors(body),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    if errors:
        reason = "; ".join(
            f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:3]
        )
        return Finding.of("output-schema", Verdict.FAIL, reason, answer)
    return Finding.of("output-schema", Verdict.PASS, "matches the model's output schema", answer)


def result_early(answer: Exchange, status: Exchange) -> Finding:
    """`result-early-400`: the result asked before completion answers 400.

    `status` is a poll made right after, telling whether the request had finished.
    """
    check = "result-early-400"
    if answer.status_code == 400:
        return Finding.of(check, Verdict.PASS, "400 before completion", answer)
    state = (status.json_object() or {}).get("status")
    if answer.status_code == 200 and state == "COMPLETED":
        reason = "the request finished before its result could be asked for early"
        return Finding.of(check, Verdict.SKIP, reason, answer, status)
    reason = f"before completion ({state}) the result answered {answer.describe()}; fal: 400"
    return Finding.of(check, Verdict.FAIL, reason, answer, status)


def fidelity(
    model: Model, sent: dict[str, Any], output: dict[str, Any], evidence: Exchange
) -> list[Finding]:
    """`num-images`, `image-size`, `seed-echo`, `output-format`: the output honours the input."""
    images = output.get("images")
    if model.output not in ("images", "synthesized") or not isinstance(images, list):
        return [Finding.of("num-images", Verdict.SKIP, "not an image model")]
    found = []
    wanted = sent.get("num_images", 1)
    if len(images) == wanted:
        found.append(Finding.of("num-images", Verdict.PASS, f"{wanted} images as asked", evidence))
    else:
        reason = f"asked for {wanted} images, got {len(images)}"
        found.append(Finding.of("num-images", Verdict.FAIL, reason, evidence))
    found.append(_sizes(model, sent, images, evidence))
    if "seed" in sent and "seed" in model.output_schema.get("properties", {}):
        got = output.get("seed")
        verdict = Verdict.PASS if got == sent["seed"] else Verdict.FAIL
        reason = f"sent seed {sent['seed']}, got {got}"
        found.append(Finding.of("seed-echo", verdict, reason, evidence))
    if "output_format" in sent:
        want = "image/" + sent["output_format"]
        got_types = sorted({str(i.get("content_type")) for i in images if isinstance(i, dict)})
        verdict = Verdict.PASS if got_types == [want] else Verdict.FAIL
        reason = f"asked for {want}, got {', '.join(got_types) or 'nothing'}"
        found.append(Finding.of("output-format", verdict, reason, evidence))
    return found


def _sizes(model: Model, sent: dict[str, Any], images: list[Any], evidence: Exchange) -> Finding:
    sizes = [(i.get("width"), i.get("height")) for i in images if isinstance(i, dict)]
    source = model.size_from
    value = sent.get(source) if source != "none" else None
    if value is None:
        return Finding.of("image-size", Verdict.SKIP, "the input sets no size")
    if not any(isinstance(w, int) and isinstance(h, int) for w, h in sizes):
        # Some models answer files without their pixel size (fal's `File`).
        return Finding.of("image-size", Verdict.SKIP, "the images do not report their size")
    if source == "aspect_ratio":
        w, h = (int(x) for x in str(value).split(":"))
        bad = [
            s
            for s in sizes
            if not (isinstance(s[0], int) and isinstance(s[1], int) and s[1] > 0)
            or abs(s[0] / s[1] - w / h) > 0.05 * (w / h)
        ]
        want = f"aspect ratio {value}"
    else:
        expected = (
            (value.get("width"), value.get("height"))
            if isinstance(value, dict)
            else preset_size(str(value))
        )
        bad = [s for s in sizes if s != expected]
        want = f"{expected[0]}x{expected[1]}" if expected else str(value)
    if bad or not sizes:
        got = ", ".join(f"{w}x{h}" for w, h in sizes) or "no sizes"
        return Finding.of("image-size", Verdict.FAIL, f"asked for {want}, got {got}", evidence)
    return Finding.of("image-size", Verdict.PASS, f"every image is {want}", evidence)
