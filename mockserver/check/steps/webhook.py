"""`webhook`: the delivery of a request submitted with ?fal_webhook=, body and signature."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mockserver.check.exchange import Exchange
from mockserver.check.findings import Finding
from mockserver.check.judge import webhook as judge
from mockserver.check.results import Verdict
from mockserver.check.steps.base import Abort, Options, StepKind, no_options

if TYPE_CHECKING:
    from mockserver.check.unit import Unit

_NEEDS_RECEIVER = "needs a webhook receiver (--webhook-listen; off by default)"


async def run(unit: Unit, options: Options) -> None:
    """Wait for the delivery on the receiver; judge its body and signature."""
    job = unit.need_completed()
    receiver = unit.checker.receiver
    if receiver is None:
        raise Abort(_NEEDS_RECEIVER)

    async def arrived() -> bool:
        return bool(receiver.arrived(unit.hook))

    if not await unit.until(arrived):
        reason = (
            f"no webhook reached {receiver.url_for(unit.hook)} within"
            f" {unit.settings.job_timeout:g} s of completion"
        )
        unit.add(Finding.of("webhook-delivered", Verdict.FAIL, reason))
        raise Abort("no webhook arrived", ran=True)
    deliveries = receiver.arrived(unit.hook)
    first = deliveries[0]
    evidence = Exchange("POST", receiver.url_for(unit.hook), None, None, first.body)
    count = f"{len(deliveries)} delivery(ies)"
    unit.add(Finding.of("webhook-delivered", Verdict.PASS, count, evidence))
    unit.add(judge.body(first.body, job.request_id, job.result, evidence))
    unit.add(judge.gateway_id(first.body, evidence))
    if not judge.is_signed(first.headers):
        unit.add(judge.unsigned(evidence))
        return
    keys = await unit.checker.jwks()
    unit.add(judge.signature(first.headers, first.body, keys, evidence))


WEBHOOK = StepKind(
    name="webhook",
    options=no_options(),
    run=run,
    describe=lambda options, where: [
        "wait for the webhook on --webhook-listen; verify it with --webhook-jwks-url"
    ],
    needs_receiver=lambda options: True,
)
