"""Build the shipped catalog: ``python -m mockserver.catalog_build`` (``make catalog``).

Each compact source in ``contracts/sources`` is expanded into fal's models-API
answers (`mockserver.fal_document`) and imported exactly like a document a
user imports (`mockserver.fal_import`), into ``contracts/models``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from mockserver.contracts import builtin_contracts_dir, load_data_file
from mockserver.fal_document import catalog_answers
from mockserver.fal_import import Imported, import_data, write_contracts


def sources_dir() -> Path:
    """The compact sources of the shipped catalog."""
    return builtin_contracts_dir() / "sources"


def build(sources: Path) -> list[Imported]:
    """The contracts the sources in `sources` describe."""
    imported: list[Imported] = []
    for path in sorted(sources.glob("*.yaml")):
        data = load_data_file(path)
        day = dt.date.fromisoformat(str(data["retrieved"]))
        name = f"sources/{path.name}"
        imported.extend(import_data(catalog_answers(data, name), path, today=day))
    return imported


def main(argv: list[str] | None = None) -> int:
    """Write the catalog's contracts; prints how many."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, default=sources_dir())
    parser.add_argument("--out", type=Path, default=builtin_contracts_dir() / "models")
    args = parser.parse_args(argv)
    written = write_contracts(build(args.sources), args.out)
    print(f"{len(written)} contracts written under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
