"""What one load process shares between its simulated users."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from mockserver.catalog import Catalog, Model
from mockserver.check.upstream import UpstreamRequest
from mockserver.load.config import LoadConfig
from mockserver.load.ledger import Ledger
from mockserver.load.upstream import ControlClient
from mockserver.redact import key_fingerprints


class SetupError(ValueError):
    """The run cannot start as configured (say, a model this process does not know)."""


@dataclass
class Session:
    """The config, the key (never printed), the models and the ledger of one process.

    A worker's session is empty until its master sends the config (`configure`).
    """

    key: str = field(repr=False)
    catalog: Catalog
    config: LoadConfig | None = None
    models: list[Model] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    stopping: bool = False  # the run is ending: users start no new job
    # Two-sided runs ---------------------------------------------------------------
    control: ControlClient | None = None
    # Fingerprints of the upstream key (whole and halves), once one job showed them.
    upstream_keys: frozenset[str] | None = None
    # Unique per process: markers of a master's workers never collide.
    _tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    _jobs: int = 0
    _cancel_credit: float = 0.0

    def configure(self, config: LoadConfig) -> None:
        """Take a config: resolve its models and set the submit budget."""
        models = [self.catalog.get(endpoint) for endpoint in config.endpoints]
        unknown = [e for e, m in zip(config.endpoints, models, strict=True) if m is None]
        if unknown:
            raise SetupError(f"unknown to this process's contracts: {', '.join(unknown)}")
        self.config = config
        self.models = [m for m in models if m is not None]
        self.ledger = Ledger(budget=config.budget)
        if config.two_sided:
            if not config.upstream_control:
                raise SetupError("a two-sided run needs the upstream's control URL")
            no_prompt = [m.endpoint_id for m in self.models if not takes_prompt(m)]
            if no_prompt:
                raise SetupError(f"two-sided runs need models with a prompt: {no_prompt}")
            self.control = ControlClient(config.upstream_control, config.request_timeout)

    def next_marker(self) -> str | None:
        """The marker of this process's next job (None when the run is not two-sided)."""
        if self.config is None or self.config.marker_prefix is None:
            return None
        self._jobs += 1
        return f"{self.config.marker_prefix}-{self._tag}_{self._jobs}"

    def cancel_next(self) -> bool:
        """Should the job just accepted be cancelled? Exactly `cancel_share` of them are
        (a credit, not chance: a short run cancels as many as asked)."""
        if self.config is None or self.config.cancel_share <= 0:
            return False
        self._cancel_credit += self.config.cancel_share
        if self._cancel_credit >= 1.0 - 1e-9:
            self._cancel_credit -= 1.0
            return True
        return False

    def learn_upstream_key(self, marker: str) -> list[UpstreamRequest] | None:
        """Read the upstream requests of an accepted job to learn the upstream key's
        fingerprints (the customers' own removed); the requests, or None on no control."""
        if self.control is None:
            return None
        found = self.control.about(marker)
        if found is None:  # the control API did not answer: a later job asks again
            return None
        mine = set(key_fingerprints(f"Key {self.key}"))  # whole and halves
        keys = {k for entry in found for k in entry.key_fingerprints} - mine
        if keys:
            self.upstream_keys = frozenset(keys | (self.upstream_keys or frozenset()))
        return found

    @property
    def secrets(self) -> tuple[str, ...]:
        """What evidence must never show."""
        return (self.key,)

    def authorization(self) -> dict[str, str]:
        """The Authorization header for the configured scheme."""
        scheme = self.config.auth_scheme if self.config else "Key"
        return {"Authorization": f"{scheme} {self.key}"}


def takes_prompt(model: Model) -> bool:
    """Does the model's input take a text prompt (where a two-sided run puts its marker)?"""
    prompt = model.input_schema.get("properties", {}).get("prompt")
    return isinstance(prompt, dict) and prompt.get("type", "string") == "string"
