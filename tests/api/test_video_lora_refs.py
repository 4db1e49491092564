"""A loraRef and what its version is made for (api/references.py with api/base_models.py): a video
takes a LoRA of its model's base model, a Wan 2.2 pair with its low-noise expert; a FLUX.1 LoRA in
a video and a video LoRA in a picture are LoraIncompatible, in one line naming the fix, waited on
in a cluster (stalled: a person's fix) and failing a laptop's run."""

from __future__ import annotations

from typing import Any

import pytest

from contentgen.api.references import Catalog, LoraState, Refusal, Resolved, Room, UsableVersion, resolve

ROOMS: tuple[Room, ...] = ("operator", "laptop")
MODEL = "s3://b/loras/alice/u-v/v{n}/model.safetensors"
LOW = "s3://b/loras/alice/u-v/v{n}/model-low-noise.safetensors"


def trained(base: str, *, pair: bool = False, versions: int = 1) -> LoraState:
    usable = tuple(
        UsableVersion(n, MODEL.format(n=n), "fal", "dmavatar", "", base, LOW.format(n=n) if pair else "")
        for n in range(1, versions + 1)
    )
    return LoraState(
        name="avatar",
        owner="alice",
        phase="Succeeded",
        latest_version=versions,
        latest_model_uri=MODEL.format(n=versions),
        uid="u-v",
        model_uris=tuple((v.number, v.model_uri) for v in usable),
        usable=usable,
    )


def video(model: str = "wan-2.2-t2v", **ref: Any) -> dict[str, Any]:
    return {
        "owner": "alice",
        "prompt": "dmavatar walks on the beach",
        "model": model,
        "loras": [{"loraRef": {"name": "avatar", **ref}}],
    }


def test_a_video_takes_a_lora_of_its_base_model_and_a_pair_with_both_experts() -> None:
    found = resolve(
        video(), "ns", Catalog("operator", loras={"avatar": trained("wan-2.2-t2v-a14b", pair=True)})
    )
    assert isinstance(found, Resolved)
    [lora] = found.loras
    assert (lora.base_model, lora.uri, lora.low_noise_uri) == (
        "wan-2.2-t2v-a14b",
        MODEL.format(n=1),
        LOW.format(n=1),
    )
    one = resolve(
        video("wan-1.3b-t2v"), "ns", Catalog("laptop", loras={"avatar": trained("wan-2.1-t2v-1.3b")})
    )
    assert isinstance(one, Resolved) and one.loras[0].low_noise_uri == ""


@pytest.mark.parametrize("room", ROOMS)
@pytest.mark.parametrize(
    ("spec", "base", "words"),
    [
        (video(), "flux.1", "is a FLUX.1 LoRA (its training.baseModel flux.1), and model wan-2.2-t2v loads"),
        (video(), "", "is a FLUX.1 LoRA"),  # a version from before training.baseModel
        (video("wan-1.3b-t2v"), "wan-2.2-t2v-a14b", "use model wan-2.2-t2v, or train one"),
        (
            {
                "owner": "alice",
                "prompt": "p",
                "model": "flux-lora",
                "loras": [{"loraRef": {"name": "avatar"}}],
            },
            "wan-2.2-t2v-a14b",
            "model flux-lora loads FLUX.1 LoRAs: use it in a VideoGeneration of model wan-2.2-t2v",
        ),
    ],
    ids=["flux-in-video", "flux-before-the-field", "another-wan", "video-in-picture"],
)
def test_a_lora_a_model_cannot_load_is_incompatible_naming_the_fix(
    room: Room, spec: dict[str, Any], base: str, words: str
) -> None:
    found = resolve(spec, "ns", Catalog(room, loras={"avatar": trained(base)}))
    assert isinstance(found, Refusal)
    assert (found.reason, found.field, found.stalled) == ("LoraIncompatible", "spec.loras[0].loraRef", True)
    assert found.action == ("wait" if room == "operator" else "fail")
    assert words in found.message and "\n" not in found.message
    assert "training.baseModel" in found.message or "imageRef" in found.message


def test_a_pinned_version_is_judged_by_what_it_was_made_for() -> None:
    # v1 a FLUX.1 LoRA, v2 a Wan 2.2 one (the spec's baseModel changed): v2 fits, v1 does not
    state = trained("wan-2.2-t2v-a14b", versions=2)
    flux_v1 = state.usable[0].__class__(1, MODEL.format(n=1), "fal", "dmavatar", "", "flux.1")
    state = LoraState(**{**state.__dict__, "usable": (flux_v1, state.usable[1])})
    assert isinstance(resolve(video(version=2), "ns", Catalog("operator", loras={"avatar": state})), Resolved)
    refused = resolve(video(version=1), "ns", Catalog("operator", loras={"avatar": state}))
    assert (
        isinstance(refused, Refusal)
        and refused.reason == "LoraIncompatible"
        and "version 1" in refused.message
    )
