"""Endpoints the catalog lacks: 404 like fal, or (opted in) a generic answer that is reported."""

from __future__ import annotations

import io

import fal_client
import httpx
import pytest
from PIL import Image

from mockserver.cli import build_parser, config_from_args
from mockserver.testing import InProcessFal

UNKNOWN = "acme/brand-new-model/v9"


def test_unknown_endpoints_are_404_by_default(fal_mock: InProcessFal) -> None:
    with pytest.raises(fal_client.client.FalClientHTTPError) as info:
        fal_client.submit(UNKNOWN, arguments={"prompt": "x"})
    assert info.value.status_code == 404
    assert fal_mock.mock.generic_endpoints == []
    with pytest.raises(AssertionError, match="refused"):
        fal_mock.assert_nothing_unexpected()


@pytest.mark.fal_mock(unknown_endpoints="generic")
def test_opted_in_any_endpoint_answers_with_a_generic_image(fal_mock: InProcessFal) -> None:
    result = fal_client.subscribe(UNKNOWN, arguments={"prompt": "a boat", "num_images": 2})
    assert result["prompt"] == "a boat" and len(result["images"]) == 2
    image = result["images"][0]
    picture = Image.open(io.BytesIO(httpx.get(image["url"]).content))
    assert picture.size == (image["width"], image["height"])
    assert fal_mock.mock.generic_endpoints == [UNKNOWN]
    with pytest.raises(AssertionError, match=f"generic output: {UNKNOWN}"):
        fal_mock.assert_nothing_unexpected()
    fal_client.subscribe("fal-ai/flux/schnell", arguments={"prompt": "known"})
    assert fal_mock.mock.generic_endpoints == [UNKNOWN]  # catalog models are not generic
    fal_mock.reset()
    fal_mock.assert_nothing_unexpected()


def test_serve_takes_the_option() -> None:
    parser = build_parser()
    assert config_from_args(parser.parse_args(["serve"])).unknown_endpoints == "404"
    args = parser.parse_args(["serve", "--unknown-endpoints", "generic"])
    assert config_from_args(args).unknown_endpoints == "generic"
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--unknown-endpoints", "maybe"])
