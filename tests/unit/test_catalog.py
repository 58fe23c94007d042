from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from mockserver.catalog import Catalog, ContractError, load_contract
from mockserver.contracts import builtin_contracts_dir
from mockserver.media import MediaSpec, render

SEED_MODELS = [
    "fal-ai/flux-1/dev",
    "fal-ai/flux-1/dev/image-to-image",
    "fal-ai/flux-1/dev/redux",
    "fal-ai/flux-1/schnell",
    "fal-ai/flux-1/schnell/redux",
    "fal-ai/flux-pro/kontext",
    "fal-ai/flux-pro/kontext/max",
    "fal-ai/flux-pro/kontext/max/multi",
    "fal-ai/flux-pro/kontext/max/text-to-image",
    "fal-ai/flux-pro/kontext/multi",
    "fal-ai/flux-pro/kontext/text-to-image",
]
DEV_CONTRACT = builtin_contracts_dir() / "models" / "fal-ai" / "flux-1" / "dev.yaml"


def test_every_seed_model_and_a_video_model_ship(catalog: Catalog) -> None:
    ids = [m.endpoint_id for m in catalog]
    for endpoint in SEED_MODELS:
        assert endpoint in ids
    assert any(m.output == "video" for m in catalog)


@pytest.mark.parametrize(
    ("endpoint", "required"),
    [
        ("fal-ai/flux-1/dev", ["prompt"]),
        ("fal-ai/flux-1/dev/image-to-image", ["image_url", "prompt"]),
        ("fal-ai/flux-1/dev/redux", ["image_url"]),
        ("fal-ai/flux-pro/kontext/multi", ["image_urls", "prompt"]),
        ("fal-ai/flux-pro/kontext/text-to-image", ["prompt"]),
    ],
)
def test_required_fields_are_reported_one_entry_each(
    catalog: Catalog, endpoint: str, required: list[str]
) -> None:
    model = catalog.get(endpoint)
    assert model is not None
    issues = model.validate({})
    assert [issue.to_json() for issue in issues] == [
        {"loc": ["body", name], "msg": "Field required", "type": "missing"} for name in required
    ]


def test_types_enums_and_ranges(catalog: Catalog) -> None:
    model = catalog.get("fal-ai/flux-1/dev")
    assert model is not None
    issues = {
        issue.loc: issue.type
        for issue in model.validate(
            {
                "prompt": 3,
                "num_images": 9,
                "output_format": "gif",
                "guidance_scale": 0,
                "image_size": "huge",
                "num_inference_steps": 2.5,
            }
        )
    }
    assert issues == {
        ("prompt",): "string_type",
        ("num_images",): "less_than_equal",
        ("output_format",): "enum",
        ("guidance_scale",): "greater_than_equal",
        ("image_size",): "union_error",
        ("num_inference_steps",): "int_type",
    }
    assert model.validate([1]) and model.validate([1])[0].to_json()["loc"] == ["body"]


def test_defaults_are_applied(catalog: Catalog) -> None:
    model = catalog.get("fal-ai/flux-1/dev")
    assert model is not None
    filled = model.with_defaults({"prompt": "x"})
    assert filled["image_size"] == "landscape_4_3"
    assert filled["num_inference_steps"] == 28
    assert filled["guidance_scale"] == 3.5
    assert filled["num_images"] == 1
    assert filled["output_format"] == "jpeg"
    assert filled["enable_safety_checker"] is True
    schnell = catalog.get("fal-ai/flux-1/schnell")
    assert schnell is not None and schnell.with_defaults({})["num_inference_steps"] == 4
    t2i = catalog.get("fal-ai/flux-pro/kontext/text-to-image")
    assert t2i is not None and t2i.with_defaults({})["aspect_ratio"] == "1:1"


@pytest.mark.parametrize(
    ("endpoint", "data", "size"),
    [
        ("fal-ai/flux-1/dev", {}, (1024, 768)),
        ("fal-ai/flux-1/dev", {"image_size": "square_hd"}, (1024, 1024)),
        ("fal-ai/flux-1/dev", {"image_size": "portrait_16_9"}, (576, 1024)),
        ("fal-ai/flux-1/dev", {"image_size": {"width": 640, "height": 480}}, (640, 480)),
        ("fal-ai/flux-pro/kontext", {"aspect_ratio": "16:9"}, (1392, 752)),
        ("fal-ai/flux-pro/kontext/text-to-image", {}, (1024, 1024)),
        ("fal-ai/flux-1/dev/image-to-image", {}, (1024, 768)),
    ],
)
def test_sizes(
    catalog: Catalog, endpoint: str, data: dict[str, object], size: tuple[int, int]
) -> None:
    model = catalog.get(endpoint)
    assert model is not None
    assert model.size_for(model.with_defaults(data)) == size


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_images_have_exactly_the_reported_size_and_type(fmt: str) -> None:
    spec = MediaSpec(kind="image", width=333, height=217, fmt=fmt, seed=5, index=1)
    data = render(spec)
    image = Image.open(io.BytesIO(data))
    assert image.size == (333, 217)
    assert image.format == fmt.upper()
    assert render(spec) == data  # deterministic
    assert render(MediaSpec(kind="image", width=333, height=217, fmt=fmt, seed=6, index=1)) != data


def test_video_is_a_real_mp4() -> None:
    data = render(MediaSpec(kind="video", width=0, height=0, fmt="mp4", seed=1, index=0))
    assert data[4:8] == b"ftyp"
    assert b"moov" in data and b"mdat" in data


def _copy_dev(tmp_path: Path, endpoint: str = "acme/custom/model") -> Path:
    data = yaml.safe_load(DEV_CONTRACT.read_text())
    data["endpoint_id"] = endpoint
    path = tmp_path / "models" / f"{endpoint}.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_dropped_in_contract_adds_a_model(tmp_path: Path) -> None:
    _copy_dev(tmp_path)
    catalog = Catalog.load(tmp_path)
    assert "acme/custom/model" in catalog
    assert "fal-ai/flux-1/dev" in catalog
    only = Catalog.load(tmp_path, builtin=False)
    assert [m.endpoint_id for m in only] == ["acme/custom/model"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("examples"), "'examples' is a required property"),
        (lambda d: d.update(output="audio"), "output: 'audio' is not one of"),
        (lambda d: d.update(endpoint_id="nope"), "endpoint_id: invalid endpoint id"),
        (
            lambda d: d["input_schema"]["properties"].update(
                steps={"type": "integer", "minimum": "x"}
            ),
            "input_schema.properties.steps.minimum",
        ),
        (
            lambda d: d["input_schema"]["properties"].update(
                x={"$ref": "definitions.yaml#/$defs/Nope"}
            ),
            "cannot be resolved",
        ),
        (lambda d: d["examples"][0]["output"].pop("images"), "examples[0].output"),
        (lambda d: d["examples"][0]["input"].update(num_images=99), "examples[0].input.num_images"),
    ],
)
def test_malformed_contracts_name_the_file_and_the_problem(
    tmp_path: Path, mutate: object, message: str
) -> None:
    path = _copy_dev(tmp_path)
    data = yaml.safe_load(path.read_text())
    mutate(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError) as info:
        Catalog.load(tmp_path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_unparseable_yaml_and_duplicates(tmp_path: Path) -> None:
    bad = tmp_path / "models" / "broken.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("endpoint_id: [unclosed\n")
    with pytest.raises(ContractError, match=r"broken\.yaml: not valid YAML"):
        load_contract(bad)
    bad.unlink()
    first = _copy_dev(tmp_path)
    shutil.copy(first, first.with_name("copy.yaml"))
    with pytest.raises(ContractError, match="is already defined by"):
        Catalog.load(tmp_path)


def test_missing_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="does not exist"):
        Catalog.load(tmp_path / "nowhere")


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5000)
    | st.floats(-5, 100, allow_nan=False)
    | st.text(max_size=6)
    | st.sampled_from(["square", "1:1", "png", "jpeg", "regular", "2"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["width", "height", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(data=st.data())
def test_the_compiled_fast_path_agrees_with_jsonschema(
    catalog: Catalog, data: st.DataObject
) -> None:
    model = data.draw(st.sampled_from(list(catalog)))
    names = sorted(model.input_schema["properties"])
    payload = data.draw(st.dictionaries(st.sampled_from(names), _json, max_size=len(names)))
    assert model._accepts is not None
    expected_valid = not list(model._validator.iter_errors(payload))
    assert model._accepts(payload) == expected_valid
    assert (model.validate(payload) == []) == expected_valid
