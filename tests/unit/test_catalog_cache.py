"""Contracts are loaded once per process, and again when a file changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from mockserver.catalog import ContractError
from mockserver.catalog_cache import cached_catalog
from mockserver.contracts import builtin_contracts_dir

DEV_CONTRACT = builtin_contracts_dir() / "models" / "fal-ai" / "flux-1" / "dev.yaml"


def _user_contracts(tmp_path: Path) -> Path:
    data = yaml.safe_load(DEV_CONTRACT.read_text())
    data["endpoint_id"] = "acme/painter"
    data["title"] = "Painter"
    (tmp_path / "painter.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def test_the_same_directories_give_the_same_catalog(tmp_path: Path) -> None:
    directory = _user_contracts(tmp_path)
    first = cached_catalog(directory)
    assert cached_catalog(directory) is first
    assert cached_catalog(directory, builtin=False) is not first
    assert "acme/painter" in first and "fal-ai/flux-1/dev" in first


def test_an_edited_added_or_removed_contract_is_loaded_again(tmp_path: Path) -> None:
    directory = _user_contracts(tmp_path)
    first = cached_catalog(directory)
    path = directory / "painter.yaml"
    path.write_text(path.read_text().replace("title: Painter", "title: Painter 2"))
    os.utime(path, ns=(0, 1))  # a changed stamp even within the clock's resolution
    edited = cached_catalog(directory)
    assert edited is not first
    painter = edited.get("acme/painter")
    assert painter is not None and painter.title == "Painter 2"
    shutil.copy(path, directory / "copy.yaml")
    with pytest.raises(ContractError, match="already defined"):
        cached_catalog(directory)  # a bad set of files is never cached
    (directory / "copy.yaml").unlink()
    assert cached_catalog(directory).get("acme/painter") is not None


def test_a_missing_directory_is_still_reported(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="does not exist"):
        cached_catalog(tmp_path / "nowhere")
