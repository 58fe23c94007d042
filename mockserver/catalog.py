"""The model catalog: contracts loaded from data files, input validation, outputs.

A contract (``contracts/models/<endpoint id>.yaml`` or ``.json``) holds one
endpoint's input JSON Schema, output schema and example outputs. An ``images``
or ``video`` contract answers with its recorded example, with the fields the
input decides filled in; a ``synthesized`` contract (what `mockserver contracts
import` writes) answers with an output built from its output schema
(`mockserver.synthesis`).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

import fastjsonschema

if TYPE_CHECKING:
    # jsonschema is imported where it is used: it explains rejected inputs and
    # checks contracts strictly, and costs a test suite's first mock a large
    # share of its start-up (its imports: referencing, attrs, rpds...).
    import jsonschema
    from jsonschema import Draft202012Validator

from mockserver.contracts import builtin_contracts_dir, load_data_file, protocol_dir
from mockserver.endpoints import EndpointId, InvalidEndpointId
from mockserver.media import MediaSpec
from mockserver.outcomes import LogLine
from mockserver.partials import StreamShape
from mockserver.synthesis import DEFAULT_IMAGE_SIZE, MediaSink, synthesize

DATA_SUFFIXES = (".yaml", ".yml", ".json")
_DEFINITIONS_REF = "definitions.yaml#"


class ContractError(ValueError):
    """A contract file is malformed; the message names the file and the problem.

    `problems` lists each problem on its own (one line each in the message).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One problem with a submitted input, in FastAPI's 422 `detail` shape."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def to_json(self) -> dict[str, Any]:
        """The entry as it appears in a 422 body."""
        return {"loc": ["body", *self.loc], "msg": self.msg, "type": self.type}


@dataclass(frozen=True)
class Model:
    """One endpoint's contract, ready to validate inputs and build outputs."""

    endpoint_id: str
    title: str
    output: Literal["images", "video", "synthesized"]
    size_from: Literal["image_size", "aspect_ratio", "none"]
    default_size: tuple[int, int]
    queue_seconds: float | None
    run_seconds: float | None
    logs: tuple[LogLine, ...]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    examples: tuple[dict[str, Any], ...]
    source: Path
    # Recorded examples by their input (defaults applied, canonical JSON): looked
    # up on every submit, so built once at load time.
    _recorded: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    category: str = ""
    description: str = ""
    # Where the schemas came from and when (`url`, `retrieved`, ...), for drift checks.
    origin: dict[str, Any] = field(default_factory=dict, compare=False)
    stream: StreamShape = field(default_factory=StreamShape)

    @cached_property
    def _accepts(self) -> Callable[[Any], bool] | None:
        # Compiled on the first validation, not at load: a catalog of many
        # models starts fast and pays only for the models it is asked about.
        return _compiled_acceptor(self.input_schema)

    @cached_property
    def _validator(self) -> Draft202012Validator:
        # Built on the first input it must explain (or that the compiled
        # acceptor cannot judge), not at load.
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self.input_schema)

    @property
    def app_id(self) -> str:
        """``owner/alias`` of the endpoint: the part request URLs use."""
        return EndpointId.parse(self.endpoint_id).app_id

    def validate(self, data: Any) -> list[ValidationIssue]:
        """Every problem with `data` against the input schema (empty when valid)."""
        # Valid inputs are the common case: a compiled validator accepts them in
        # a tenth of the time; jsonschema then explains the rejected ones.
        if self._accepts is not None and self._accepts(data):
            return []
        issues = [_issue(error) for error in self._validator.iter_errors(data)]
        return sorted(issues, key=lambda issue: [str(part) for part in issue.loc])

    def recorded_example(self, data: dict[str, Any]) -> int | None:
        """The index of a recorded example (one with `media`) whose input, with
        defaults, equals `data` (defaults applied): that request replays its answer."""
        if not self._recorded:
            return None
        return self._recorded.get(json.dumps(data, sort_keys=True))

    def recorded_media(self, index: int) -> dict[str, Path]:
        """Media URL in the recorded output -> the stored file."""
        example = self.examples[index]
        return {url: self.source.parent / path for url, path in example.get("media", {}).items()}

    def with_defaults(self, data: dict[str, Any]) -> dict[str, Any]:
        """`data` with the schema's top-level defaults filled in."""
        return _with_defaults(self.input_schema, data)

    def synthesize(
        self, data: dict[str, Any], seed: int, sink: MediaSink, run_seconds: float
    ) -> Any:
        """A ``synthesized`` model's output for input `data` (defaults applied):
        built from the output schema, its media registered with `sink`."""
        return synthesize(self.output_schema, data, seed, sink, run_seconds=run_seconds)

    def media_specs(self, data: dict[str, Any], seed: int) -> list[MediaSpec]:
        """The media files a run with input `data` (defaults applied) produces
        (``images`` and ``video`` models; synthesized ones decide in `synthesize`)."""
        if self.output == "video":
            return [MediaSpec(kind="video", width=0, height=0, fmt="mp4", seed=seed, index=0)]
        width, height = self.size_for(data)
        fmt = data.get("output_format") or _format_of(self.examples[0])
        count = int(data.get("num_images", 1))
        return [
            MediaSpec(kind="image", width=width, height=height, fmt=fmt, seed=seed, index=i)
            for i in range(count)
        ]

    def size_for(self, data: dict[str, Any]) -> tuple[int, int]:
        """Pixel size of output images for input `data` (defaults applied)."""
        value = data.get(self.size_from) if self.size_from != "none" else None
        if isinstance(value, dict):
            return int(value["width"]), int(value["height"])
        if isinstance(value, str):
            table = _size_tables()[self.size_from]
            if value in table:
                return table[value]
        return self.default_size

    def build_output(
        self,
        data: dict[str, Any],
        seed: int,
        media_urls: list[str],
        media: list[MediaSpec],
        run_seconds: float,
        media_sizes: list[int],
    ) -> dict[str, Any]:
        """The result body: the recorded example with what the input decides filled in."""
        example = self.examples[seed % len(self.examples)]
        # Shallow: only top-level keys are replaced below, so the recorded
        # example is never mutated. Treat the returned dict as read-only.
        output: dict[str, Any] = dict(example["output"])
        if self.output == "video":
            output["video"] = dict(
                output.get("video", {}),
                url=media_urls[0],
                content_type=media[0].content_type,
                file_name=media[0].file_name,
                file_size=media_sizes[0],
            )
        else:
            output["images"] = [
                {
                    "url": url,
                    "width": spec.width,
                    "height": spec.height,
                    "content_type": spec.content_type,
                }
                for url, spec in zip(media_urls, media, strict=True)
            ]
            if "has_nsfw_concepts" in output:
                output["has_nsfw_concepts"] = [False] * len(media)
        if "seed" in output or "seed" in data:
            output["seed"] = seed
        if "prompt" in output:
            output["prompt"] = data.get("prompt", "")
        if "timings" in output:
            output["timings"] = {"inference": round(run_seconds, 6)}
        return output


class Catalog:
    """Every model the mock knows, by normalized endpoint id."""

    def __init__(self, models: Iterable[Model]) -> None:
        self._models: dict[str, Model] = {}
        for model in models:
            self._models[model.endpoint_id] = model

    @classmethod
    def load(cls, *directories: Path, builtin: bool = True) -> Catalog:
        """Load the shipped contracts (unless `builtin` is False), then each directory.

        A later directory's contract replaces an earlier one for the same
        endpoint, so users can override a shipped model or add their own.
        Raises `ContractError` naming the first bad file.
        """
        shipped = [builtin_contracts_dir()] if builtin else []
        roots = [(root, False) for root in shipped] + [(Path(d), True) for d in directories]
        models: dict[str, Model] = {}
        for root, strict in roots:
            seen: dict[str, Path] = {}
            for path in contract_files(root):
                # The shipped contracts are checked in full by the test suite;
                # loading them skips the costly schema checks, so start-up
                # stays fast however large the catalog grows.
                model = load_contract(path, strict=strict)
                if model.endpoint_id in seen:
                    raise ContractError(
                        f"{path}: endpoint_id {model.endpoint_id!r} is already defined"
                        f" by {seen[model.endpoint_id]}"
                    )
                seen[model.endpoint_id] = path
                models[model.endpoint_id] = model
        return cls(models.values())

    def get(self, endpoint_id: str) -> Model | None:
        """The model for an endpoint id, if any."""
        return self._models.get(endpoint_id)

    def __iter__(self) -> Iterator[Model]:
        return iter(sorted(self._models.values(), key=lambda m: m.endpoint_id))

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, endpoint_id: object) -> bool:
        return endpoint_id in self._models


GENERIC_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["images", "timings", "seed", "has_nsfw_concepts", "prompt"],
    "properties": {
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "x-media-kind": "image",
                "required": ["url", "width", "height", "content_type"],
                "properties": {
                    "url": {"type": "string"},
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                    "content_type": {"type": "string"},
                },
            },
        },
        "timings": {"type": "object"},
        "seed": {"type": "integer"},
        "has_nsfw_concepts": {"type": "array", "items": {"type": "boolean"}},
        "prompt": {"type": "string"},
    },
}


def generic_model(endpoint_id: str) -> Model:
    """The stand-in for an endpoint the catalog lacks (``--unknown-endpoints
    generic``): any JSON object in, a text-to-image style answer out."""
    anything: dict[str, Any] = {"type": "object"}
    return Model(
        endpoint_id=endpoint_id,
        title="generic answer (not in the catalog)",
        output="synthesized",
        size_from="none",
        default_size=DEFAULT_IMAGE_SIZE,
        queue_seconds=None,
        run_seconds=None,
        logs=(
            LogLine(at=0.0, message="Generic answer: endpoint not in the catalog", level="WARN"),
        ),
        input_schema=anything,
        output_schema=GENERIC_OUTPUT,
        examples=({"input": {}, "output": {}},),
        source=Path("<generic>"),
        category="generic",
    )


def contract_files(root: Path) -> list[Path]:
    """The contract files under a contracts directory (its ``models/`` or itself)."""
    if root.is_file():
        raise ContractError(
            f"{root}: is a file; pass the contracts directory that holds it ({root.parent})"
        )
    if not root.is_dir():
        raise ContractError(f"{root}: contracts directory does not exist")
    base = root / "models" if (root / "models").is_dir() else root
    return sorted(
        path
        for path in base.rglob("*")
        if path.suffix in DATA_SUFFIXES and path.is_file() and "protocol" not in path.parts
    )


def load_contract(path: Path, *, strict: bool = True) -> Model:
    """Load and check one contract file; `ContractError` names the file and problem.

    `strict` also checks the file against the contract schema, both schemas
    against the JSON Schema meta-schema and every example against them (the
    costly part of loading). The shipped contracts load without: the test
    suite loads each of them strictly.
    """
    try:
        data = load_data_file(path)
    except ValueError as exc:
        raise ContractError(str(exc)) from exc
    if not isinstance(data, dict):
        raise ContractError(f"{path}: a contract is a mapping, got {type(data).__name__}")
    # Compiled, so the happy path costs little; compiling it costs a test
    # run's first mock as much as loading every shipped contract, though.
    if strict and not _contract_acceptor()(data):
        _check(_contract_validator(), data, path, "")
    try:
        endpoint_id = str(EndpointId.parse(data["endpoint_id"]))
    except InvalidEndpointId as exc:
        raise ContractError(f"{path}: endpoint_id: {exc}") from exc
    try:
        input_schema = inline_refs(data["input_schema"])
        output_schema = inline_refs(data["output_schema"])
    except KeyError as exc:
        raise ContractError(f"{path}: {exc.args[0]}") from exc
    if strict:
        _check_schemas(path, input_schema, output_schema, data["examples"])
    for i, example in enumerate(data["examples"]):
        _check_media(example.get("media", {}), path, i)
    output = data["output"]
    size = data.get("default_size") or _example_size(data["examples"][0]["output"], output, path)
    origin = data.get("source", {})
    timing = data.get("timing", {})
    logs = tuple(
        LogLine(at=float(x.get("at", 0.0)), message=x["message"], level=x.get("level", "INFO"))
        for x in data.get("logs", [])
    )
    return Model(
        endpoint_id=endpoint_id,
        title=data.get("title", endpoint_id),
        output=output,
        size_from=data.get("size_from", "none"),
        default_size=(int(size[0]), int(size[1])),
        queue_seconds=timing.get("queue_seconds"),
        run_seconds=timing.get("run_seconds"),
        logs=tuple(sorted(logs, key=lambda line: line.at)),
        input_schema=input_schema,
        output_schema=output_schema,
        examples=tuple(data["examples"]),
        source=path,
        category=data.get("category", ""),
        description=data.get("description", ""),
        origin=origin,
        _recorded={
            json.dumps(_with_defaults(input_schema, example["input"]), sort_keys=True): index
            for index, example in enumerate(data["examples"])
            if "media" in example
        },
        stream=StreamShape.from_json(data.get("stream")),
    )


def _check_schemas(
    path: Path,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
    examples: list[dict[str, Any]],
) -> None:
    """The strict checks: both schemas against the meta-schema, every example
    against them (`ContractError` for the first schema or example that fails)."""
    import jsonschema
    from jsonschema import Draft202012Validator

    for name, schema in (("input_schema", input_schema), ("output_schema", output_schema)):
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = ".".join(str(p) for p in exc.absolute_path)
            raise ContractError(f"{path}: {name}.{where}: {exc.message}") from exc
    input_validator = Draft202012Validator(input_schema)
    output_validator = Draft202012Validator(output_schema)
    for i, example in enumerate(examples):
        _check(input_validator, example["input"], path, f"examples[{i}].input")
        _check(output_validator, example["output"], path, f"examples[{i}].output")


def _with_defaults(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    filled = dict(data)
    for name, prop in schema.get("properties", {}).items():
        if name not in filled and isinstance(prop, dict) and "default" in prop:
            default = prop["default"]
            # Only a container needs its own copy (the job may change it; the
            # schema's must not): most defaults are str/int/bool, and a
            # deepcopy each was a visible share of every submit.
            filled[name] = copy.deepcopy(default) if isinstance(default, dict | list) else default
    return filled


def _check_media(media: dict[str, str], path: Path, index: int) -> None:
    """Recorded media files must exist next to the contract, inside its directory."""
    for url, relative in media.items():
        where = f"{path}: examples[{index}].media[{url!r}]"
        candidate = PurePosixPath(relative)
        if candidate.is_absolute() or ".." in candidate.parts:
            raise ContractError(
                f"{where}: {relative!r} must be a path inside the contract's directory"
            )
        if not (path.parent / relative).is_file():
            raise ContractError(f"{where}: file {relative!r} does not exist next to the contract")


def inline_refs(schema: Any, definitions: dict[str, Any] | None = None) -> Any:
    """Replace ``definitions.yaml#/$defs/X`` references by the definitions themselves.

    The result is a self-contained schema (no external references), which is
    what validators, OpenAPI and schema-driven test generators all want.
    Sibling keywords of a `$ref` (`default`, `description`) override the
    definition's. Raises KeyError for a reference that cannot be resolved.
    """
    defs = definitions if definitions is not None else _definitions()["$defs"]
    if isinstance(schema, list):
        return [inline_refs(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: inline_refs(value, defs) for key, value in schema.items() if key != "$ref"}
    ref = schema.get("$ref")
    if ref is None:
        return result
    name = _definition_name(ref)
    if name not in defs:
        raise KeyError(
            f"$ref {ref!r} cannot be resolved: use 'definitions.yaml#/$defs/<Name>'"
            f" with one of {', '.join(sorted(defs))}"
        )
    return {**inline_refs(defs[name], defs), **result}


# Keywords that exist only in newer drafts than fastjsonschema knows (draft 7):
# a schema using one is always validated by jsonschema alone.
_NEWER_KEYWORDS = frozenset(
    {
        "prefixItems",
        "$defs",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
        "unevaluatedItems",
        "$dynamicRef",
        "$dynamicAnchor",
        "$anchor",
        "minContains",
        "maxContains",
        "$ref",
    }
)


def _compiled_acceptor(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    if _uses_keywords(schema, _NEWER_KEYWORDS):
        return None
    compiled = fastjsonschema.compile(schema, use_default=False)

    def accepts(data: Any) -> bool:
        try:
            compiled(data)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return accepts


def _uses_keywords(schema: Any, keywords: frozenset[str]) -> bool:
    if isinstance(schema, dict):
        return any(k in keywords for k in schema) or any(
            _uses_keywords(v, keywords) for v in schema.values()
        )
    if isinstance(schema, list):
        return any(_uses_keywords(v, keywords) for v in schema)
    return False


def random_seed(rng: random.Random) -> int:
    """A seed as fal reports it when the caller gave none."""
    return rng.randrange(0, 2**32)


def _definition_name(ref: str) -> str:
    for prefix in (_DEFINITIONS_REF + "/$defs/", "#/$defs/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


@cache
def _definitions() -> dict[str, Any]:
    data = load_data_file(protocol_dir() / "definitions.yaml")
    assert isinstance(data, dict)
    return data


@cache
def _size_tables() -> dict[str, dict[str, tuple[int, int]]]:
    data = _definitions()
    return {
        "image_size": {k: (v[0], v[1]) for k, v in data["image_size_presets"].items()},
        "aspect_ratio": {k: (v[0], v[1]) for k, v in data["aspect_ratio_sizes"].items()},
    }


def preset_size(name: str) -> tuple[int, int] | None:
    """Pixel size of an `image_size` preset (`landscape_4_3`, ...), None if unknown."""
    return _size_tables()["image_size"].get(name)


@cache
def _contract_schema() -> dict[str, Any]:
    schema = load_data_file(protocol_dir() / "contract.schema.yaml")
    assert isinstance(schema, dict)
    return schema


@cache
def _contract_acceptor() -> Callable[[Any], bool]:
    schema = {k: v for k, v in _contract_schema().items() if k != "$schema"}
    return _compiled_acceptor(schema) or (lambda data: False)


@cache
def _contract_validator() -> Draft202012Validator:
    # Only for a contract the compiled acceptor refused: it lists the problems.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_contract_schema())


def _check(validator: Draft202012Validator, data: Any, path: Path, where: str) -> None:
    """Raise a `ContractError` listing every problem, one line each."""
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = []
        for error in errors:
            location = ".".join([where, *(str(p) for p in error.absolute_path)]).strip(".")
            lines.append(f"{path}: {location or '(top level)'}: {error.message}")
        raise ContractError("\n".join(lines), lines)


def _example_size(output: dict[str, Any], kind: str, path: Path) -> tuple[int, int]:
    if kind == "video":
        return (0, 0)
    if kind == "synthesized":
        return DEFAULT_IMAGE_SIZE
    images = output.get("images") or []
    if not images:
        raise ContractError(f"{path}: examples[0].output has no images to take a default size from")
    return int(images[0]["width"]), int(images[0]["height"])


def _format_of(example: dict[str, Any]) -> str:
    images = example["output"].get("images") or [{}]
    content_type = str(images[0].get("content_type", "image/jpeg"))
    return content_type.removeprefix("image/")


_TYPE_NAMES = {
    "string": "string_type",
    "integer": "int_type",
    "number": "float_type",
    "boolean": "bool_type",
    "array": "list_type",
    "object": "dict_type",
    "null": "none_type",
}
_KEYWORD_TYPES = {
    "minimum": "greater_than_equal",
    "exclusiveMinimum": "greater_than",
    "maximum": "less_than_equal",
    "exclusiveMaximum": "less_than",
    "minLength": "string_too_short",
    "maxLength": "string_too_long",
    "minItems": "too_short",
    "maxItems": "too_long",
    "enum": "enum",
    "const": "literal_error",
    "pattern": "string_pattern_mismatch",
    "anyOf": "union_error",
    "oneOf": "union_error",
    "additionalProperties": "extra_forbidden",
}

_MESSAGES = {
    "minimum": "Input should be greater than or equal to {}",
    "exclusiveMinimum": "Input should be greater than {}",
    "maximum": "Input should be less than or equal to {}",
    "exclusiveMaximum": "Input should be less than {}",
    "minLength": "String should have at least {} characters",
    "maxLength": "String should have at most {} characters",
    "minItems": "List should have at least {} items",
    "maxItems": "List should have at most {} items",
    "const": "Input should be {!r}",
    "pattern": "String should match pattern {!r}",
}


def _issue(error: jsonschema.ValidationError) -> ValidationIssue:
    """Translate a jsonschema error into pydantic/FastAPI's vocabulary."""
    loc: tuple[str | int, ...] = tuple(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return ValidationIssue(loc=(*loc, missing), msg="Field required", type="missing")
    if error.validator == "type":
        expected: Any = error.validator_value
        name = expected if isinstance(expected, str) else str(expected[0])
        return ValidationIssue(
            loc=loc, msg=f"Input should be a valid {name}", type=_TYPE_NAMES.get(name, "type_error")
        )
    if error.validator == "enum":
        values: Any = error.validator_value
        allowed = ", ".join(repr(v) for v in values)
        return ValidationIssue(loc=loc, msg=f"Input should be {allowed}", type="enum")
    kind = _KEYWORD_TYPES.get(str(error.validator), "value_error")
    template = _MESSAGES.get(str(error.validator))
    msg = template.format(error.validator_value) if template else error.message
    return ValidationIssue(loc=loc, msg=msg, type=kind)
