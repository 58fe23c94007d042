"""What one load process shares between its simulated users."""

from __future__ import annotations

from dataclasses import dataclass, field

from mockserver.catalog import Catalog, Model
from mockserver.load.config import LoadConfig
from mockserver.load.ledger import Ledger


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

    def configure(self, config: LoadConfig) -> None:
        """Take a config: resolve its models and set the submit budget."""
        models = [self.catalog.get(endpoint) for endpoint in config.endpoints]
        unknown = [e for e, m in zip(config.endpoints, models, strict=True) if m is None]
        if unknown:
            raise SetupError(f"unknown to this process's contracts: {', '.join(unknown)}")
        self.config = config
        self.models = [m for m in models if m is not None]
        self.ledger = Ledger(budget=config.budget)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What evidence must never show."""
        return (self.key,)

    def authorization(self) -> dict[str, str]:
        """The Authorization header for the configured scheme."""
        scheme = self.config.auth_scheme if self.config else "Key"
        return {"Authorization": f"{scheme} {self.key}"}
