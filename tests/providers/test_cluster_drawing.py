"""A training draws the watch's pictures only with the LoRA it has just stored: the watch hands its
provider a presigned link to that stored file, which names the same object as the checkpoint's own
`s3://` URI (path-style or virtual-hosted, any query), and no other object."""

from __future__ import annotations

import pytest

from contentgen.errors import InvalidInput
from contentgen.providers.base import ImageRequest, LoraWeights
from contentgen.providers.cluster.training.drawing import asked, names

STORED = "s3://contentgen/loras/alice/u1/v1/checkpoints/step-000050.safetensors"
KEY = "loras/alice/u1/v1/checkpoints/step-000050.safetensors"

SAME = [
    STORED,
    f"http://10.200.0.1:9000/contentgen/{KEY}?X-Amz-Signature=abc",
    f"https://s3.example.com/contentgen/{KEY}",
    f"https://contentgen.s3.eu-west-1.amazonaws.com/{KEY}?X-Amz-Expires=60",
    f"http://10.200.0.1:9000/contentgen/{KEY.replace('-', '%2D')}",
]
OTHER = [
    f"http://10.200.0.1:9000/contentgen/{KEY.replace('000050', '000100')}",  # another checkpoint
    f"http://10.200.0.1:9000/other/{KEY}",  # another bucket
    f"https://other.s3.amazonaws.com/{KEY}",
    f"http://10.200.0.1:9000/contentgen/{KEY}x",
    f"http://10.200.0.1:9000/{KEY}",  # path-style without its bucket
    f"file:///{KEY}",
]


@pytest.mark.parametrize("url", SAME)
def test_a_link_to_the_stored_checkpoint_names_it(url: str) -> None:
    assert names(url, STORED)
    request = ImageRequest("a photo of tw", "z-image-turbo", loras=(LoraWeights(url),))
    assert asked(request, STORED, {"a photo of tw": None}) == [url.split("?")[0]]


@pytest.mark.parametrize("url", OTHER)
def test_a_link_to_another_object_is_refused_in_one_line(url: str) -> None:
    assert not names(url, STORED)
    request = ImageRequest("a photo of tw", "z-image-turbo", loras=(LoraWeights(url),))
    with pytest.raises(
        InvalidInput, match=r"^a training draws only with .*step-000050\.safetensors\) at scale 1"
    ):
        asked(request, STORED, {"a photo of tw": None})


def test_nothing_stored_yet_draws_only_the_baseline_and_file_uris_match_as_they_are() -> None:
    assert not names(STORED, "")
    assert names("file:///w/step-000002.safetensors", "file:///w/step-000002.safetensors")
    assert asked(ImageRequest("p", "flux-dev"), "", {"p": None}) == []
    halved = ImageRequest("p", "flux-dev", loras=(LoraWeights(STORED, scale=0.5),))
    with pytest.raises(InvalidInput, match="at scale 1"):
        asked(halved, STORED, {"p": None})
