"""fal-queue-harness: a mock server and contract tests for the fal.ai queue protocol.

In process::

    from mockserver import FalMock, MockConfig, ManualClock, create_app
    mock = FalMock(MockConfig(instant=True), clock=ManualClock())
    app = create_app(mock)   # any ASGI server, or httpx.ASGITransport(app)
"""

from mockserver.app import create_app
from mockserver.catalog import Catalog, ContractError, Model
from mockserver.clock import Clock, ManualClock, RealClock
from mockserver.endpoints import EndpointId, InvalidEndpointId, request_path, rewrite_url
from mockserver.faults import Fault
from mockserver.mock import FalMock, HttpError, MockConfig, RecordedRequest
from mockserver.outcomes import LogLine, Outcome
from mockserver.profiles import INTERMEDIARY, OFFICIAL, Profile
from mockserver.queue import Job, Retention, State

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
    "InvalidEndpointId",
    "Job",
    "LogLine",
    "ManualClock",
    "MockConfig",
    "Model",
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
