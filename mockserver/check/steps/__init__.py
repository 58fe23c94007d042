"""Scenario step kinds: each defined once, here, with its options, run and description.

The scenario file schema (`contracts/protocol/scenario.schema.yaml`) takes its
step kinds and their options from `STEP_KINDS`; the checker runs a step with
`STEP_KINDS[kind].run`; `--dry-run` describes it with `.describe`. A new kind
is one `StepKind` added to the list below.
"""

from __future__ import annotations

from mockserver.check.steps.base import Abort, Job, Options, StepKind, Where
from mockserver.check.steps.output import FIDELITY, MEDIA, RESULT
from mockserver.check.steps.requests import CANCEL, CROSS_KEY, UNKNOWN
from mockserver.check.steps.submit import SUBMIT
from mockserver.check.steps.surface import OUTPUT_STREAM, REALTIME, START_DEADLINE, UPLOAD
from mockserver.check.steps.wait import COMPARE, WAIT
from mockserver.check.steps.webhook import WEBHOOK

_ALL = (
    SUBMIT,
    WAIT,
    RESULT,
    CANCEL,
    MEDIA,
    FIDELITY,
    UNKNOWN,
    COMPARE,
    CROSS_KEY,
    WEBHOOK,
    OUTPUT_STREAM,
    UPLOAD,
    START_DEADLINE,
    REALTIME,
)
STEP_KINDS: dict[str, StepKind] = {kind.name: kind for kind in _ALL}

__all__ = ["STEP_KINDS", "Abort", "Job", "Options", "StepKind", "Where"]
