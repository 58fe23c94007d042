"""Writing recordings in the contracts format, merging with what is already there."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from mockserver.catalog import Catalog, ContractError, load_contract
from mockserver.contracts import load_data_file
from mockserver.endpoints import EndpointId
from mockserver.redact import Redactor

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpeg",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
}


@dataclass
class Traits:
    """Protocol traits observed for one endpoint."""

    upstream: str
    auth_scheme: str | None = None
    url_style: str | None = None
    status_codes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The contract's `recorded` section."""
        data: dict[str, Any] = {"upstream": self.upstream}
        if self.auth_scheme:
            data["auth_scheme"] = self.auth_scheme
        if self.url_style:
            data["url_style"] = self.url_style
        data["status_codes"] = dict(sorted(self.status_codes.items()))
        data["recorded_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return data


@dataclass
class RecordedExample:
    """One completed request: its input, its output, the media files saved for it."""

    endpoint_id: str
    input: dict[str, Any]
    output: dict[str, Any]
    media: dict[str, Path]  # media URL in output -> downloaded file (a temporary path)
    queue_seconds: float
    run_seconds: float


def contract_path(root: Path, endpoint_id: str) -> Path:
    """Where an endpoint's contract goes: `<root>/models/<owner>/<alias>/<path>.yaml`."""
    parts = PurePosixPath(str(EndpointId.parse(endpoint_id)))
    return root / "models" / Path(*parts.parts[:-1]) / f"{parts.name}.yaml"


#: The hidden folder inside `--out` where downloads land before they are kept
#: (same file system as the contracts, so keeping one is an atomic rename).
SCRATCH = ".recording"


class RecordingStore:
    """The output directory of a recording; thread-safe, writes atomically.

    Nothing is ever half-written: media are downloaded into a scratch folder
    inside the directory, renamed into place, and only then referenced by a
    contract, itself written to a hidden temporary file and renamed. A run that
    was killed can still leave pieces (scratch files, temporary contracts,
    media no contract references yet); the next store on the directory removes
    them first and lists them in `cleaned`. One recorder per directory.
    """

    def __init__(self, root: Path, redactor: Redactor, upstream: str) -> None:
        self.root = root
        self.redactor = redactor
        self.upstream = upstream
        self.traits: dict[str, Traits] = {}
        self._lock = threading.Lock()
        self._builtin = Catalog.load()
        self.written: list[Path] = []
        self.cleaned: list[Path] = clean_leftovers(root)

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A fresh folder for downloads, removed afterwards whatever happens."""
        folder = self.root / SCRATCH / uuid.uuid4().hex
        folder.mkdir(parents=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def trait(self, endpoint_id: str) -> Traits:
        """The traits being observed for an endpoint."""
        with self._lock:
            return self.traits.setdefault(endpoint_id, Traits(self.redactor.url(self.upstream)))

    def add(self, example: RecordedExample) -> Path:
        """Merge one example into its endpoint's contract and write it.

        Raises `LeakError` (nothing written) when a secret would reach the disk.
        """
        with self._lock:
            return self._add(example)

    def _add(self, example: RecordedExample) -> Path:
        path = contract_path(self.root, example.endpoint_id)
        contract = self._existing(path) or self._new_contract(example)
        media_dir = path.parent / f"{path.stem}.media"
        stored: dict[str, str] = {}
        staged: list[tuple[Path, Path]] = []
        for url, temporary in example.media.items():
            digest = _sha256_file(temporary)
            suffix = temporary.suffix or ".bin"
            target = media_dir / f"{digest[:20]}{suffix}"
            stored[self.redactor.data(url)] = f"{path.stem}.media/{target.name}"
            staged.append((temporary, target))
        entry = {
            "input": self.redactor.data(example.input),
            "output": self.redactor.data(example.output),
        }
        if stored:
            entry["media"] = stored
        examples = [e for e in contract["examples"] if e.get("input") != entry["input"]]
        examples.append(entry)
        contract["examples"] = examples
        contract["timing"] = {
            "queue_seconds": round(max(example.queue_seconds, 0.0), 3),
            "run_seconds": round(max(example.run_seconds, 0.0), 3),
        }
        contract["recorded"] = self.traits.setdefault(
            example.endpoint_id, Traits(self.redactor.url(self.upstream))
        ).to_json()
        text = (
            "# Recorded by `mockserver record`; replay with `mockserver serve --contracts DIR`.\n"
        )
        text += yaml.safe_dump(contract, sort_keys=False, allow_unicode=True, width=100)
        self.redactor.ensure_clean(text, str(path))
        added: list[Path] = []
        try:
            # Media first, so the contract that names them is complete when it
            # appears; a crash in between leaves unreferenced media, which the
            # next start removes.
            for temporary, target in staged:
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    added.append(target)
                os.replace(temporary, target)
            _write_checked(path, text)
        except BaseException:
            for target in added:
                target.unlink(missing_ok=True)
            raise
        self.written.append(path)
        return path

    def _existing(self, path: Path) -> dict[str, Any] | None:
        """The contract already at `path`; `ContractError` when it does not load
        (it is left as it is: the example is not recorded rather than lost)."""
        if not path.is_file():
            return None
        try:
            load_contract(path)
        except ContractError as exc:
            raise ContractError(
                f"the contract already in --out does not load, so it is not overwritten: {exc}"
            ) from None
        data: dict[str, Any] = load_data_file(path)
        return data

    def _new_contract(self, example: RecordedExample) -> dict[str, Any]:
        """A contract for an endpoint seen for the first time: the shipped schemas
        when the endpoint is a known one, else permissive schemas."""
        known = self._builtin.get(example.endpoint_id)
        kind = "video" if "video" in example.output and "images" not in example.output else "images"
        size_from = "none"
        if "image_size" in example.input:
            size_from = "image_size"
        elif "aspect_ratio" in example.input:
            size_from = "aspect_ratio"
        contract: dict[str, Any] = {
            "endpoint_id": example.endpoint_id,
            "title": known.title if known else f"{example.endpoint_id} (recorded)",
            "output": known.output if known else kind,
            "size_from": known.size_from if known else size_from,
        }
        if known is None and kind == "images":
            contract["default_size"] = _first_size(example.output)
        contract["input_schema"] = (
            copy.deepcopy(known.input_schema) if known else {"type": "object"}
        )
        contract["output_schema"] = (
            copy.deepcopy(known.output_schema) if known else {"type": "object"}
        )
        contract["examples"] = []
        return contract


def clean_leftovers(root: Path) -> list[Path]:
    """Remove what a killed recording left in `root`: the scratch folder, hidden
    temporary contracts, and media files that no contract references."""
    if not root.is_dir():
        return []
    removed: list[Path] = []
    scratch = root / SCRATCH
    if scratch.exists():
        shutil.rmtree(scratch, ignore_errors=True)
        removed.append(scratch)
    models = root / "models"
    if not models.is_dir():
        return removed
    for temporary in models.rglob(".*.yaml.tmp"):
        temporary.unlink(missing_ok=True)
        removed.append(temporary)
    for folder in sorted(models.rglob("*.media")):
        if not folder.is_dir():
            continue
        contract = folder.with_name(folder.name.removesuffix(".media") + ".yaml")
        referenced = _referenced_media(contract)
        if referenced is None:  # a contract that does not load: touch nothing of it
            continue
        for file in folder.iterdir():
            if file.is_file() and file.name not in referenced:
                file.unlink()
                removed.append(file)
    return removed


def _referenced_media(contract: Path) -> set[str] | None:
    """The media file names a contract references (empty when there is no
    contract; None when it cannot be read)."""
    if not contract.is_file():
        return set()
    try:
        data = load_data_file(contract)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        return None
    return {
        PurePosixPath(str(relative)).name
        for example in data["examples"]
        if isinstance(example, dict) and isinstance(example.get("media"), dict)
        for relative in example["media"].values()
    }


def _first_size(output: dict[str, Any]) -> list[int]:
    for image in output.get("images") or []:
        if isinstance(image, dict) and isinstance(image.get("width"), int):
            return [image["width"], image.get("height") or image["width"]]
    return [1024, 1024]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_checked(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, and only if it loads as a contract
    (a recording must never leave a contracts directory the server refuses)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".yaml.tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    try:
        load_contract(Path(temporary))
    except ContractError as exc:
        os.unlink(temporary)
        raise ContractError(f"{path}: not written, it would not load: {exc}") from exc
    os.replace(temporary, path)


def extension_for(content_type: str | None, url: str) -> str:
    """A file extension for a media download."""
    if content_type:
        known = _EXTENSIONS.get(content_type.split(";")[0].strip().lower())
        if known:
            return known
    suffix = PurePosixPath(url.split("?", 1)[0]).suffix
    return suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ".bin"
