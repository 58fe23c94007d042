import io

import fal_client
import pytest
from PIL import Image

import thumbnails


def test_thumbnail_is_a_square_image(fal_mock):
    data = thumbnails.thumbnail("a lighthouse")
    assert Image.open(io.BytesIO(data)).size == (512, 512)
    fal_mock.assert_called("fal-ai/flux-1/schnell", times=1)
    fal_mock.assert_nothing_unexpected()


def test_a_content_policy_failure_reaches_the_caller(fal_mock):
    fal_mock.next_outcome("fal-ai/flux-1/schnell", "model_error")
    with pytest.raises(fal_client.client.FalClientHTTPError) as info:
        thumbnails.thumbnail("something flagged")
    assert info.value.status_code == 422


@pytest.mark.fal_mock(profile="intermediary")
def test_through_the_intermediary(fal_mock):
    result = thumbnails.thumbnail_via_intermediary("a fox", key=fal_mock.key)
    assert result["prompt"] == "a fox"
    submitted = fal_mock.calls("fal-ai/flux-1/dev", action="submit")[0]
    assert submitted.headers["authorization"] == "Bearer ***"
