"""Where the shipped contracts live, and reading YAML/JSON data files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

_PACKAGE = Path(__file__).resolve().parent
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def builtin_contracts_dir() -> Path:
    """The contracts shipped with the package (inside the wheel, or the checkout's)."""
    inside_wheel = _PACKAGE / "_contracts"
    if inside_wheel.is_dir():
        return inside_wheel
    return _PACKAGE.parent / "contracts"


def protocol_dir() -> Path:
    """Shared protocol data: definitions, the contract schema, the OpenAPI document."""
    return builtin_contracts_dir() / "protocol"


def media_dir() -> Path:
    """Recorded media files (the video clip)."""
    return builtin_contracts_dir() / "media"


def load_data_file(path: Path) -> Any:
    """Parse a .yaml/.yml/.json file; ValueError names the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from exc
    try:
        if path.suffix == ".json":
            return json.loads(text)
        # libyaml's parser when PyYAML has it: ten times faster than pure Python.
        return yaml.load(text, Loader=_YAML_LOADER)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from exc
