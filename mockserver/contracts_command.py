"""`mockserver contracts import | list | show`: fal documents in, the catalog out."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mockserver.catalog import Catalog, Model
from mockserver.cli_output import cells, error, plain
from mockserver.endpoints import EndpointId, InvalidEndpointId
from mockserver.fal_import import DocumentError, import_file, media_fields, write_contracts
from mockserver.synthesis import flatten

FAL_OPENAPI_URL = "https://fal.ai/api/openapi/queue/openapi.json"


def add_parsers(commands: Any) -> None:
    """The `import`, `list` and `show` subcommands of `mockserver contracts`."""
    importing = commands.add_parser(
        "import",
        help="write contracts from fal's per-endpoint OpenAPI documents",
        description=(
            "Each SOURCE is a file holding fal's queue OpenAPI document of an endpoint"
            " (JSON or YAML), or a models-API answer with an 'openapi' member; or, when"
            " the machine is online and no such file exists, an endpoint id fetched from"
            f" {FAL_OPENAPI_URL}. One contract per endpoint is written under DIR"
            " (replacing an earlier import); serve it with 'mockserver serve --contracts DIR'."
        ),
    )
    importing.add_argument("sources", nargs="+", metavar="SOURCE")
    importing.add_argument("--out", type=Path, required=True, metavar="DIR")
    listing = commands.add_parser("list", help="list the models a server would serve, by category")
    listing.add_argument("directories", nargs="*", type=Path, metavar="DIR")
    show = commands.add_parser("show", help="print one model's inputs and outputs")
    show.add_argument("endpoint_id", metavar="ID")
    show.add_argument(
        "--contracts", action="append", type=Path, default=[], metavar="DIR", help="extra contracts"
    )


def run(args: argparse.Namespace, console: Console, errors: Console) -> int:
    """Execute `mockserver contracts import|list|show`; returns the exit code."""
    if args.contracts_command == "import":
        return _import(args.sources, args.out, console, errors)
    if args.contracts_command == "show":
        return _show(args.endpoint_id, args.contracts, console, errors)
    return list_models(args.directories, console)


def _import(sources: Sequence[str], out: Path, console: Console, errors: Console) -> int:
    imported = []
    for source in sources:
        try:
            path = Path(source) if Path(source).exists() else _fetch(source)
            imported.extend(import_file(path))
        except DocumentError as exc:
            error(errors, "contracts import", str(exc))
            return 1
    for path, item in zip(write_contracts(imported, out), imported, strict=True):
        kinds = ", ".join(f"{m['path']} ({m['kind']})" for m in item.contract["media_fields"])
        plain(console, f"{item.endpoint_id} -> {path}  media: {kinds or 'none'}")
    console.print(
        f"{len(imported)} contract(s) written; serve them: mockserver serve --contracts {out}"
    )
    return 0


def _fetch(source: str) -> Path:
    """Download fal's document of an endpoint id (needs the network)."""
    try:
        endpoint_id = str(EndpointId.parse(source))
    except InvalidEndpointId:
        raise DocumentError(f"{source}: no such file, and not an endpoint id") from None
    import httpx

    try:
        answer = httpx.get(FAL_OPENAPI_URL, params={"endpoint_id": endpoint_id}, timeout=30)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise DocumentError(f"{source}: no such file, and fetching it failed: {exc}") from None
    handle = tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False)  # noqa: SIM115
    with handle:
        handle.write(answer.content)
    return Path(handle.name)


def list_models(directories: Sequence[Path], console: Console) -> int:
    """The catalog, one table per category."""
    catalog = Catalog.load(*directories)
    groups: dict[str, list[Model]] = defaultdict(list)
    for model in catalog:
        groups[model.category or _category_of(model)].append(model)
    for category in sorted(groups):
        table = Table("endpoint id", "output", "title", title=Text(category), title_justify="left")
        for model in groups[category]:
            table.add_row(*cells(model.endpoint_id, model.output, model.title))
        console.print(table)
    plain(console, f"{len(catalog)} models")
    return 0


def _category_of(model: Model) -> str:
    if model.output == "video":
        return "text-to-video"
    return "image-to-image" if "image_url" in str(model.input_schema) else "text-to-image"


def _show(endpoint_id: str, directories: Sequence[Path], console: Console, errors: Console) -> int:
    model = Catalog.load(*directories).get(endpoint_id)
    if model is None:
        error(errors, "contracts show", f"no model {endpoint_id!r}")
        return 1
    console.print(Text.assemble((model.endpoint_id, "bold"), f"  {model.title}"))
    plain(console, f"category: {model.category or _category_of(model)}   output: {model.output}")
    if model.origin:
        plain(console, "source: " + ", ".join(f"{k} {v}" for k, v in model.origin.items()))
    plain(console, f"contract: {model.source}")
    inputs = Table("input", "type", "required", "default / range", title_justify="left")
    required = set(model.input_schema.get("required", []))
    for name, prop in (model.input_schema.get("properties") or {}).items():
        inputs.add_row(
            *cells(name, _type_text(prop), "yes" if name in required else "", _limits(prop))
        )
    console.print(inputs)
    outputs = Table("output", "type", "required", title_justify="left")
    out_required = set(model.output_schema.get("required", []))
    for name, prop in (model.output_schema.get("properties") or {}).items():
        outputs.add_row(*cells(name, _type_text(prop), "yes" if name in out_required else ""))
    console.print(outputs)
    media = list(media_fields(model.output_schema))
    if media:
        plain(console, "media: " + ", ".join(f"{m['path']} ({m['kind']})" for m in media))
    return 0


def _type_text(schema: Any) -> str:
    flat = flatten(schema)
    if "enum" in flat:
        return "enum: " + ", ".join(json.dumps(v) for v in flat["enum"])
    kind = flat.get("type", "any")
    if kind == "array":
        return f"list of {_type_text(flat.get('items', {}))}"
    if kind == "object" and "x-media-kind" in flat:
        return f"{flat['x-media-kind']} file"
    if isinstance(schema, dict) and ("anyOf" in schema or "oneOf" in schema):
        branches = schema.get("anyOf") or schema.get("oneOf") or []
        names = [_type_text(b) for b in branches]
        return " | ".join(names)
    return str(kind)


def _limits(schema: Any) -> str:
    flat = flatten(schema)
    parts = []
    if "default" in flat:
        parts.append(f"default {json.dumps(flat['default'])}")
    low = flat.get("minimum", flat.get("exclusiveMinimum"))
    high = flat.get("maximum", flat.get("exclusiveMaximum"))
    if low is not None or high is not None:
        parts.append(f"{'' if low is None else low}..{'' if high is None else high}")
    return ", ".join(parts)
