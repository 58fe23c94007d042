"""What every step kind is made of, and the state steps share within one scenario run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mockserver.endpoints import Action, EndpointId, request_path

if TYPE_CHECKING:
    from mockserver.check.unit import Unit

Options = dict[str, Any]


class Abort(Exception):
    """A step cannot go on; later steps are skipped. `ran`: the step itself ran
    (and reported why it stops), else it is listed as not run too."""

    def __init__(self, reason: str, *, ran: bool = False) -> None:
        super().__init__(reason)
        self.ran = ran


@dataclass
class Job:
    """The request a scenario run submitted."""

    request_id: str
    urls: dict[str, str]  # response/status/cancel, rewritten onto the base
    final_status: dict[str, Any] | None = None  # the COMPLETED status, once seen
    result: dict[str, Any] | None = None
    cancelled: bool = False

    @property
    def completed(self) -> bool:
        """A COMPLETED status was seen (polled or streamed)."""
        return self.final_status is not None


@dataclass(frozen=True)
class Where:
    """Where a scenario run sends its requests (for plans: nothing is sent)."""

    base_url: str
    endpoint_id: str

    @property
    def submit_url(self) -> str:
        """`POST` here to submit."""
        return f"{self.base_url.rstrip('/')}/{self.endpoint_id}"

    def request_url(self, action: Action, request_id: str = "{id}") -> str:
        """The URL fal's rule builds for `action` on a request."""
        app_id = EndpointId.parse(self.endpoint_id).app_id
        return self.base_url.rstrip("/") + request_path(app_id, request_id, action)


def _never(options: Options) -> bool:
    return False


@dataclass(frozen=True)
class StepKind:
    """One kind of scenario step: the one place that defines it.

    `options` is the JSON schema of the step's options in a scenario file;
    `run` performs it; `describe` says what it would send (for --dry-run);
    `billable` tells a submit a conforming server accepts (and may charge for);
    `refused` tells one it should refuse; `needs_receiver` one that needs a
    webhook receiver.
    """

    name: str
    options: dict[str, Any]
    run: Callable[[Unit, Options], Awaitable[None]]
    describe: Callable[[Options, Where], list[str]]
    billable: Callable[[Options], bool] = _never
    refused: Callable[[Options], bool] = _never
    needs_receiver: Callable[[Options], bool] = _never
    doc: str = field(default="")


def no_options() -> dict[str, Any]:
    """The schema of a step that takes no options."""
    return {"type": "object", "additionalProperties": False}
