"""fal-queue-harness: a mock server and contract tests for the fal.ai queue protocol.

In process::

    from mockserver import FalMock, MockConfig, ManualClock, create_app
    mock = FalMock(MockConfig(instant=True), clock=ManualClock())
    app = create_app(mock)   # any ASGI server, or httpx.ASGITransport(app)
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mockserver.app import create_app
    from mockserver.catalog import Catalog, ContractError, Model
    from mockserver.clock import Clock, ManualClock, NotManualClock, RealClock
    from mockserver.endpoints import EndpointId, InvalidEndpointId, request_path, rewrite_url
    from mockserver.errors import MockError
    from mockserver.faults import Fault
    from mockserver.http import HttpError
    from mockserver.jsonfields import InvalidControlInput
    from mockserver.mock import FalMock, MockConfig, RecordedRequest
    from mockserver.outcomes import LogLine, Outcome
    from mockserver.profiles import INTERMEDIARY, OFFICIAL, Profile
    from mockserver.queue import Job, Retention, State

# Every name is imported on first use: the pytest plugin and the reference
# client live in this package, and importing them must not import the server
# (Starlette, jsonschema, Pillow, cryptography...).
_HOMES = {
    "create_app": "app",
    "Catalog": "catalog",
    "ContractError": "catalog",
    "Model": "catalog",
    "Clock": "clock",
    "ManualClock": "clock",
    "RealClock": "clock",
    "NotManualClock": "clock",
    "InvalidControlInput": "jsonfields",
    "EndpointId": "endpoints",
    "InvalidEndpointId": "endpoints",
    "request_path": "endpoints",
    "rewrite_url": "endpoints",
    "MockError": "errors",
    "Fault": "faults",
    "FalMock": "mock",
    "HttpError": "http",
    "MockConfig": "mock",
    "RecordedRequest": "mock",
    "LogLine": "outcomes",
    "Outcome": "outcomes",
    "INTERMEDIARY": "profiles",
    "OFFICIAL": "profiles",
    "Profile": "profiles",
    "Job": "queue",
    "Retention": "queue",
    "State": "queue",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mockserver' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"mockserver.{home}"), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "INTERMEDIARY",
    "OFFICIAL",
    "Catalog",
    "Clock",
    "ContractError",
    "EndpointId",
    "FalMock",
    "Fault",
    "HttpError",
    "InvalidControlInput",
    "InvalidEndpointId",
    "Job",
    "LogLine",
    "ManualClock",
    "MockConfig",
    "MockError",
    "Model",
    "NotManualClock",
    "Outcome",
    "Profile",
    "RealClock",
    "RecordedRequest",
    "Retention",
    "State",
    "__version__",
    "create_app",
    "request_path",
    "rewrite_url",
]
