"""What a finished job leaves behind once it expires: nothing."""

from __future__ import annotations

from starlette.testclient import TestClient

from mockserver import FalMock, ManualClock
from tests.conftest import path_of, submit


def test_cached_status_answers_go_with_the_expired_job(
    client: TestClient, mock: FalMock, clock: ManualClock
) -> None:
    queued = submit(client)
    clock.advance(5)
    for with_logs in ("0", "1"):
        status = client.get(path_of(queued["status_url"]) + f"?logs={with_logs}")
        assert status.status_code == 200 and status.json()["status"] == "COMPLETED"
    assert queued["request_id"] in mock._final_status  # the finished answers are cached
    clock.advance(mock.config.retention.seconds + 1)
    assert client.get(path_of(queued["status_url"])).status_code == 404
    assert queued["request_id"] not in mock._final_status
