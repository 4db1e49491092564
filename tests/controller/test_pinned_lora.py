"""A loraRef pinned to a version (loraRef.version): the operator uses that version's weights and
records it as the lineage; a version the LoraTraining does not have (never trained, deleted) is
Stalled with LoraVersionNotFound, naming the versions it has; the observed state keeps every
usable version's weights."""

from __future__ import annotations

from contentgen.controller.decide import World, decide
from contentgen.controller.observe import LoraState, lora_state
from tests.harness.controller import (
    NOW,
    apply,
    cond,
    listed_lora,
    pinned,
    reason,
    resource,
)

URI = "s3://bkt/loras/alice/u/v{}/model.safetensors"
STYLE = LoraState(
    "style",
    "alice",
    "Succeeded",
    3,
    URI.format(3),
    uid="u",
    model_uris=((1, URI.format(1)), (3, URI.format(3))),
)


def test_a_pinned_version_uses_its_weights() -> None:
    res = resource("ImageGeneration", model="flux-lora", loras=pinned(1))
    d = decide(res, World(now=NOW, loras={"style": STYLE}))
    assert d.job is not None
    (used,) = d.job.loras
    assert (used.uri, used.version, used.name, used.uid, used.scale) == (URI.format(1), 1, "style", "u", 0.5)


def test_a_version_it_does_not_have_is_stalled_and_says_which_it_has() -> None:
    res = resource("ImageGeneration", model="flux-lora", loras=pinned(2))  # v2 was deleted
    d = decide(res, World(now=NOW, loras={"style": STYLE}))
    assert d.job is None and d.waiting == "LoraVersionNotFound" and cond(d.status, "Stalled") == "True"
    assert "has no usable version 2 (usable versions: v1, v3)" in d.status["message"]
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "LoraVersionNotFound")]
    # Not trained yet at all: it waits for the first version, as an unpinned ref does.
    waiting = decide(
        apply(res, d), World(now=NOW, loras={"style": LoraState("style", "alice", "Running", 0, "")})
    )
    assert waiting.waiting == "LoraNotReady" and reason(waiting.status) == "LoraNotReady"
    # Another owner's LoraTraining is refused before its versions are looked at.
    other = LoraState("style", "mallory", "Succeeded", 1, URI.format(1), model_uris=((1, URI.format(1)),))
    refused = decide(
        resource("ImageGeneration", model="flux-lora", loras=pinned(1)),
        World(now=NOW, loras={"style": other}),
    )
    assert reason(refused.status) == "LoraOwnerMismatch"


def test_the_observed_state_keeps_every_usable_version() -> None:
    body = {
        "metadata": {"name": "style", "uid": "u"},
        "spec": {"owner": "alice"},
        "status": {
            "phase": "Succeeded",
            "latestVersion": 3,
            "versions": [
                listed_lora(1, URI.format(1)),
                listed_lora(3, URI.format(3)),
            ],
        },
    }
    state = lora_state(body)
    assert state.model_uris == (
        (1, URI.format(1)),
        (3, URI.format(3)),
    ) and state.latest_model_uri == URI.format(3)
