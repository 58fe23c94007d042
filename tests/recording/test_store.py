"""The recording store and redactor on their own: leaks refused, bad media paths named."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockserver.catalog import ContractError, load_contract
from mockserver.recording import LeakError, RecordingStore, Redactor
from mockserver.recording.store import RecordedExample, contract_path

KEY = "store-secret-key-42"


def _example(tmp_path: Path, prompt: str) -> RecordedExample:
    image = tmp_path / "scratch.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    url = "https://v3.fal.media/files/x/abc.png"
    output = {
        "images": [{"url": url, "width": 64, "height": 64, "content_type": "image/png"}],
        "seed": 1,
    }
    return RecordedExample("acme/painter", {"prompt": prompt}, output, {url: image}, 0.5, 1.0)


def test_a_fixture_still_holding_the_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redactor = Redactor.build()
    redactor.learn_authorization(f"Key {KEY}")
    store = RecordingStore(tmp_path / "out", redactor, "https://upstream.example")
    # Defeat the scrubbing itself: the last check must still stop the write.
    monkeypatch.setattr(redactor, "data", lambda value: value)
    with pytest.raises(LeakError, match="nothing was written"):
        store.add(_example(tmp_path, f"prompt with {KEY}"))
    assert not (tmp_path / "out").exists()


def test_scrubbing_masks_the_key_in_any_string(tmp_path: Path) -> None:
    redactor = Redactor.build()
    redactor.learn_authorization(f"Bearer {KEY}")
    store = RecordingStore(tmp_path / "out", redactor, f"https://upstream.example/?api_key={KEY}")
    path = store.add(_example(tmp_path, f"prompt with {KEY}"))
    text = path.read_text()
    assert KEY not in text and "prompt with ***" in text and "api_key=***" in text
    model = load_contract(path)
    assert model.examples[0]["media"] == {
        "https://v3.fal.media/files/x/abc.png": "painter.media/"
        + next(p.name for p in (path.parent / "painter.media").iterdir())
    }
    assert path == contract_path(tmp_path / "out", "acme/painter")


def test_a_contract_naming_media_outside_its_directory_fails_to_load(tmp_path: Path) -> None:
    redactor = Redactor.build()
    path = RecordingStore(tmp_path / "out", redactor, "https://u.example").add(
        _example(tmp_path, "p")
    )
    text = path.read_text()
    escaped = text.replace(": painter.media/", ": ../../../secret/")
    path.write_text(escaped)
    with pytest.raises(
        ContractError, match=r"examples\[0\]\.media.*inside the contract's directory"
    ):
        load_contract(path)
    path.write_text(text.replace(": painter.media/", ": dev.media/missing-"))
    with pytest.raises(ContractError, match="does not exist next to the contract"):
        load_contract(path)


def test_bad_scrub_patterns_are_named() -> None:
    with pytest.raises(ValueError, match=r"--scrub-pattern '\(': "):
        Redactor.build(patterns=["("])
    redactor = Redactor.build(fields=["my_field"])
    assert redactor.data({"a": {"my_field": "v", "session_id": "s", "keep": "k"}}) == {
        "a": {"my_field": "***", "session_id": "***", "keep": "k"}
    }
