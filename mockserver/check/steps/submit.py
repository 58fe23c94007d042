"""`submit`: send the scenario's input; judge the refusal or the accepted request."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from mockserver.check.judge import submit as judge
from mockserver.check.steps.base import Abort, Job, Options, StepKind, Where

if TYPE_CHECKING:
    from mockserver.check.unit import Unit


async def run(unit: Unit, options: Options) -> None:
    """Submit; a refusal is judged as such, an accepted request becomes the run's job."""
    payload = unit.scenario.input_for(unit.model, options.get("input"))
    unit.input = payload
    auth = options.get("auth", "ok")
    url = unit.where.submit_url
    if options.get("webhook"):
        receiver = unit.checker.receiver
        if receiver is None:
            raise Abort("needs a webhook receiver (--webhook-listen; off by default)")
        url += "?" + urlencode({"fal_webhook": receiver.url_for(unit.hook)})
    answer = await unit.call("POST", url, auth=auth, body=payload, submit=True)
    if auth != "ok":
        unit.add(judge.auth(auth, answer))
        await unit.cancel_stray(answer)
        return
    if options.get("invalid_fields"):
        unit.add(judge.validation(options["invalid_fields"], answer))
        await unit.cancel_stray(answer)
        return
    finding = judge.accepted(answer)
    unit.add(finding)
    request_id = judge.request_id_of(answer)
    if request_id is None:
        raise Abort("the submit was not accepted", ran=True)
    returned = judge.returned_urls(answer)
    urls = {
        name: unit.url(request_id, action, returned[name])  # type: ignore[arg-type]
        for name, action in judge.URL_ACTIONS.items()
    }
    unit.job = Job(request_id, urls)
    unit.checker.submitted(unit.job)
    if options.get("urls"):
        unit.add(judge.url_shape(answer, unit.app_id))
        unit.add(judge.url_origin(answer, unit.target.base_url))
        unit.add(judge.auth_scheme(unit.target.auth_scheme, answer))
        unit.add(judge.gateway_id(answer))


def describe(options: Options, where: Where) -> list[str]:
    """The submit, and how it deviates from a plain one."""
    auth = options.get("auth", "ok")
    note = "" if auth == "ok" else f" with {auth} auth"
    note += " (invalid input)" if options.get("invalid_fields") else ""
    note += " ?fal_webhook=<receiver>" if options.get("webhook") else ""
    return [f"POST {where.submit_url}{note}"]


def _refused(options: Options) -> bool:
    return options.get("auth", "ok") != "ok" or bool(options.get("invalid_fields"))


SUBMIT = StepKind(
    name="submit",
    options={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "input": {"type": "object"},
            "auth": {"enum": ["ok", *judge.AUTH_KINDS]},
            "urls": {
                "type": "boolean",
                "description": "check the shape and origin of returned URLs (and the"
                " answer's gateway_request_id)",
            },
            "webhook": {
                "type": "boolean",
                "description": "submit with ?fal_webhook= (needs --webhook-listen)",
            },
            "invalid_fields": {
                "description": "the input is invalid; expect a 422 naming these body fields",
                "type": "array",
                "items": {"type": "string"},
            },
        },
    },
    run=run,
    describe=describe,
    billable=lambda options: not _refused(options),
    refused=_refused,
    needs_receiver=lambda options: bool(options.get("webhook")),
)
