from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mockserver.catalog import contract_files
from mockserver.cli import build_parser, config_from_args, main
from mockserver.contracts import builtin_contracts_dir


def _serve_args(*argv: str) -> object:
    return build_parser().parse_args(["serve", *argv])


@pytest.mark.e2e
def test_help_lists_commands_and_examples() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mockserver", "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    for word in ("serve", "contracts", "examples:", "--profile intermediary"):
        assert word in done.stdout


def test_serve_defaults() -> None:
    config = config_from_args(_serve_args())  # type: ignore[arg-type]
    assert config.profile.name == "official" and config.keys is None
    assert config.runners == 2 and not config.instant
    assert config.retention.seconds == 3600 and config.retention.large_seconds == 360


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEYS", " a , b ,")
    config = config_from_args(_serve_args("--keys-env", "MY_KEYS"))  # type: ignore[arg-type]
    assert config.keys == frozenset({"a", "b"})
    monkeypatch.setenv("MY_KEYS", "")
    with pytest.raises(ValueError, match="unset or empty"):
        config_from_args(_serve_args("--keys-env", "MY_KEYS"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--runners", "0"], "--runners"),
        (["--ssl-certfile", "x.pem"], "go together"),
        (["--queue-seconds", "-1"], "--queue-seconds"),
    ],
)
def test_bad_serve_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *argv]) == 2
    assert message in capsys.readouterr().err


def test_unknown_profile_is_rejected_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--profile", "nope"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_contracts_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "validate", str(builtin_contracts_dir())]) == 0
    shipped = len(contract_files(builtin_contracts_dir()))
    assert shipped >= 45  # the seed's models and the fal catalog
    assert f"{shipped} contract file(s) checked: 0 problem(s)" in capsys.readouterr().out
    (tmp_path / "bad.yaml").write_text("endpoint_id: acme/x\n")
    (tmp_path / "worse.json").write_text("{")
    assert main(["contracts", "validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad.yaml: (top level): 'examples' is a required property" in out
    assert "bad.yaml: (top level): 'output' is a required property" in out
    assert "worse.json: not valid JSON" in out
    # each problem counts (bad.yaml has several), not each file
    assert "2 contract file(s) checked: 5 problem(s) (2 file(s) with problems)" in out
    assert main(["contracts", "validate", str(tmp_path / "missing")]) == 1


def test_contracts_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "list"]) == 0
    assert "fal-ai/flux-1/schnell" in capsys.readouterr().out
