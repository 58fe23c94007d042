"""The recorder never leaves partial state, and a broken --out never changes
what the client gets. In process (the upstream is a `FalMock`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mockserver.catalog import ContractError, load_contract
from mockserver.recording import RecordingStore
from mockserver.recording.store import SCRATCH, contract_path
from mockserver.redact import Redactor
from tests.recording.test_credentials import KEY, recording

DEV = "fal-ai/flux-1/dev"
AUTH = {"Authorization": f"Key {KEY}"}


def _record(client: TestClient, prompt: str) -> tuple[int, str, dict[str, object]]:
    queued = client.post(f"/{DEV}", json={"prompt": prompt}, headers=AUTH).json()
    result = client.get(f"/fal-ai/flux-1/requests/{queued['request_id']}", headers=AUTH)
    return result.status_code, result.headers["content-type"], result.json()


@pytest.mark.parametrize(
    "existing",
    ["endpoint_id: [unclosed\n  - : :", "endpoint_id: fal-ai/flux-1/dev\n", "- a list\n"],
)
def test_a_malformed_contract_in_out_does_not_change_the_answer(
    tmp_path: Path, existing: str
) -> None:
    path = contract_path(tmp_path, DEV)
    path.parent.mkdir(parents=True)
    path.write_text(existing)
    with recording(tmp_path) as (_, client):
        code, content_type, answer = _record(client, "a fox")
        assert code == 200 and content_type == "application/json" and answer["images"]
        assert _record(client, "again")[0] == 200  # the connection still serves
        problems = client.get("/_record/status").json()["problems"]
    assert len(problems) == 2 and all("does not load" in p for p in problems)
    assert path.read_text() == existing  # left as it was
    assert not list(path.parent.glob("*.media")) and not list(path.parent.glob(".*"))


def test_leftovers_of_a_killed_run_are_removed_on_the_next_start(tmp_path: Path) -> None:
    with recording(tmp_path) as (_, client):
        assert _record(client, "kept")[0] == 200
    path = contract_path(tmp_path, DEV)
    media = path.parent / "dev.media"
    [kept] = list(media.iterdir())
    # What kill -9 at the wrong moments leaves behind:
    scratch = tmp_path / SCRATCH / "abc123"
    scratch.mkdir(parents=True)
    (scratch / "0.png").write_bytes(b"half a download")
    temporary = path.parent / ".dev.x1y2z3.yaml.tmp"
    temporary.write_text("endpoint_id: half")
    orphan = media / "0123456789abcdef0123.png"
    orphan.write_bytes(b"moved in, never referenced")
    lonely = path.parent / "schnell.media"
    lonely.mkdir()
    (lonely / "aaaa.png").write_bytes(b"no contract at all")

    store = RecordingStore(tmp_path, Redactor.build(), "http://upstream.test")
    assert set(store.cleaned) == {tmp_path / SCRATCH, temporary, orphan, lonely / "aaaa.png"}
    assert list(media.iterdir()) == [kept]
    assert not (tmp_path / SCRATCH).exists() and not temporary.exists()
    assert load_contract(path).examples[0]["input"] == {"prompt": "kept"}


def test_a_contract_that_would_not_load_keeps_no_media(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path) -> None:
        raise ContractError(f"{path}: refused by the test")

    monkeypatch.setattr("mockserver.recording.store.load_contract", refuse)
    with recording(tmp_path) as (_, client):
        assert _record(client, "never kept")[0] == 200
        problems = client.get("/_record/status").json()["problems"]
    assert problems and "refused by the test" in problems[0]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == []  # no media, no temporary contract, no scratch download


def test_downloads_land_inside_out_and_are_gone_afterwards(tmp_path: Path) -> None:
    with recording(tmp_path) as (_, client):
        assert _record(client, "x")[0] == 200
    assert list((tmp_path / SCRATCH).iterdir()) == []
