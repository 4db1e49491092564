"""The reference resolver on its own (api/references.py): each refusal with its one wording, wait in
a cluster and fail on a laptop, grants across owners and namespaces, evaluable versions, imageRef."""

from __future__ import annotations

from typing import Any

import pytest

from contentgen.api.image import ResolvedLora
from contentgen.api.references import (
    Catalog,
    ImageState,
    LoraState,
    Refusal,
    Resolved,
    Room,
    UsableVersion,
    resolve,
)
from contentgen.api.sharing import grant

ROOMS: tuple[Room, ...] = ("operator", "laptop")


def lora(owner: str = "alice", *versions: int, **kwargs: Any) -> LoraState:
    numbers = versions or (1,)
    uris = tuple((n, f"s3://b/loras/{owner}/u-avatar/v{n}/model.safetensors") for n in numbers)
    fields: dict[str, Any] = {
        "name": "avatar",
        "owner": owner,
        "phase": "Succeeded",
        "latest_version": numbers[-1],
        "latest_model_uri": uris[-1][1],
        "uid": "u-avatar",
        "model_uris": uris,
        "usable": tuple(UsableVersion(n, uri, "fal", "tok", f"s3://b/datasets/v{n}.zip") for n, uri in uris),
    }
    return LoraState(**(fields | kwargs))


def uses(owner: str, /, **ref: Any) -> dict[str, Any]:
    """An ImageGeneration's spec using the LoRA `avatar` (and a LoRA by url)."""
    loras = [
        {"url": "https://example.com/style.safetensors", "scale": 0.5},
        {"loraRef": {"name": "avatar", **ref}},
    ]
    return {"owner": owner, "prompt": "p", "loras": loras}


def refused(found: Resolved | Refusal) -> Refusal:
    assert isinstance(found, Refusal), found
    return found


def test_a_lora_resolves_to_its_latest_or_pinned_version_and_a_url_keeps_its_lineage() -> None:
    lineage = {"s3://b/loras/alice/u-old/v4/model.safetensors": ("alice", "u-old", 4)}
    catalog = Catalog("operator", loras={"avatar": lora("alice", 1, 3)}, lineage=lineage.get)
    found = resolve(uses("alice"), "ns", catalog)
    assert isinstance(found, Resolved) and found.image is None and found.lora is None
    by_url, by_ref = found.loras
    assert (by_url.uri, by_url.scale, by_url.uid, by_url.version) == (
        "https://example.com/style.safetensors",
        0.5,
        "",
        0,
    )
    assert (by_ref.name, by_ref.uid, by_ref.version, by_ref.uri) == (
        "avatar",
        "u-avatar",
        3,
        "s3://b/loras/alice/u-avatar/v3/model.safetensors",
    )
    pinned = resolve(uses("alice", version=1), "ns", catalog)
    assert isinstance(pinned, Resolved) and pinned.loras[1].version == 1
    stored = {"owner": "alice", "loras": [{"url": "s3://b/loras/alice/u-old/v4/model.safetensors"}]}
    again = resolve(stored, "ns", catalog)
    assert isinstance(again, Resolved) and (again.loras[0].uid, again.loras[0].version) == ("u-old", 4)


@pytest.mark.parametrize("room", ROOMS)
def test_each_refusal_waits_in_a_cluster_and_fails_on_a_laptop(room: Room) -> None:
    def refusal(spec: dict[str, Any], **catalog: Any) -> Refusal:
        return refused(resolve(spec, "ns", Catalog(room, store="<store>", **catalog)))

    action = "wait" if room == "operator" else "fail"
    cases = [
        (refusal(uses("alice"), loras={"avatar": None}), "LoraNotFound", True),
        (refusal(uses("bob"), loras={"avatar": lora("alice")}), "LoraOwnerMismatch", True),
        (
            refusal(uses("alice", version=2), loras={"avatar": lora("alice", 1, 3)}),
            "LoraVersionNotFound",
            True,
        ),
        (
            refusal(uses("alice"), loras={"avatar": LoraState("avatar", "alice", "Running", 0, "")}),
            "LoraNotReady",
            False,
        ),
        (
            refusal(
                uses("alice"), loras={"avatar": LoraState("avatar", "alice", "Failed", 0, "", reason="X")}
            ),
            "LoraFailed",
            True,
        ),
    ]
    for said, reason, stalled in cases:
        assert (said.reason, said.action, said.stalled) == (reason, action, stalled), said
        assert said.field == "spec.loras[1].loraRef" and said.message.startswith("loraRef 'avatar'")
        assert str(said) == f"{reason}: {said.message}" and "\n" not in said.message


def test_a_missing_lora_says_what_to_do_in_each_room() -> None:
    spec = uses("alice")
    waits = refused(resolve(spec, "ns", Catalog("operator", loras={"avatar": None})))
    assert waits.message == (
        "loraRef 'avatar': there is no LoraTraining 'avatar' in namespace ns; "
        "this resolves by itself when it is created"
    )
    fails = refused(resolve(spec, "ns", Catalog("laptop", loras={"avatar": None}, store="<store>")))
    assert fails.message == (
        "loraRef 'avatar': there is no LoraTraining 'avatar' in namespace ns with a trained version of owner "
        "'alice' in <store>; run its manifest first (contentgen run loratraining.yaml)"
    )
    failed = LoraState("avatar", "alice", "Failed", 0, "", reason="DatasetTooSmall", message="3 images")
    said = refused(resolve(spec, "ns", Catalog("operator", loras={"avatar": failed})))
    assert said.message == (
        "loraRef 'avatar': LoraTraining 'avatar' failed and has no trained version (DatasetTooSmall: 3 "
        "images); fix it, and this resolves by itself when it trains a version"
    )


def test_a_pinned_version_names_the_usable_ones_and_where_older_ones_are() -> None:
    listed = lora("alice", 3, 4, older_versions=2)
    said = refused(resolve(uses("alice", version=1), "ns", Catalog("operator", loras={"avatar": listed})))
    assert said.message == (
        "loraRef 'avatar' version 1: LoraTraining 'avatar' has no usable version 1 (usable versions: v3, "
        "v4); versions before v3 are no longer listed in its status: give that version's model as url (its "
        "modelUri in the catalog: `contentgen assets get avatar`); pin another version, or leave version out "
        "for its latest"
    )
    evaluation = {"owner": "alice", "loraRef": {"name": "avatar", "version": 1}}
    said = refused(resolve(evaluation, "ns", Catalog("operator", loras={"avatar": listed})))
    assert said.field == "spec.loraRef"
    assert "evaluate it with `contentgen assets evaluate avatar --version 1`" in said.message


@pytest.mark.parametrize("room", ROOMS)
def test_another_owners_lora_is_used_where_it_was_shared_for_use(room: Room) -> None:
    """Across namespaces: keyed namespace/name; a use grant to the resource's owner, nothing else."""
    ref = {"namespace": "studio-a", "owner": "alice"}
    shared = lora(
        "alice", grants=(grant("bob", "use"), grant("carol", "read"), grant("group:artists", "read"))
    )
    catalog = Catalog(room, loras={"studio-a/avatar": shared})
    found = resolve(uses("bob", **ref), "mine", catalog)
    assert isinstance(found, Resolved) and found.loras[1].uid == "u-avatar"
    for owner in ("carol", "dave"):  # read only; nothing at all
        said = refused(resolve(uses(owner, **ref), "mine", catalog))
        assert said.reason == "LoraNotShared" and said.field == "spec.loras[1].loraRef"
        assert said.message.startswith(
            f"loraRef 'avatar' belongs to owner 'alice', who has not shared it with owner '{owner}' for use; "
            "alice shares it with: "
        )
        if room == "operator":  # where the grants are: the LoraTraining's annotation, its others kept
            others = "owner:carol=read,group:artists=read" if owner == "dave" else "group:artists=read"
            assert said.message.endswith(
                "kubectl annotate loratraining/avatar -n studio-a contentgen.io/shared-with=owner:bob=use,"
                f"{others},owner:{owner}=use --overwrite"
            )
        else:  # the record's shares in the catalog
            assert said.message.endswith(
                f"contentgen assets share studio-a/avatar --owner alice --to owner:{owner} --access use"
            )


def test_another_owners_lora_must_be_named_with_its_owner_and_grants_must_be_known() -> None:
    alices = {"studio-a/avatar": lora("alice", grants=(grant("bob", "use"),))}
    unnamed = refused(resolve(uses("bob", namespace="studio-a"), "mine", Catalog("operator", loras=alices)))
    assert (
        unnamed.reason == "LoraOwnerMismatch" and "name its owner (loraRef.owner: alice)" in unnamed.message
    )
    wrong = refused(
        resolve(
            uses("alice", namespace="studio-a", owner="mallory"), "mine", Catalog("operator", loras=alices)
        )
    )
    assert wrong.reason == "LoraOwnerMismatch"
    assert "names owner 'mallory', but LoraTraining studio-a/avatar belongs to 'alice'" in wrong.message
    unknown = {"studio-a/avatar": lora("alice", grants_known=False)}
    said = refused(
        resolve(uses("bob", namespace="studio-a", owner="alice"), "mine", Catalog("laptop", loras=unknown))
    )
    assert (said.reason, said.action) == ("LoraNotShared", "fail")
    assert "give the catalog it was recorded in (--catalog)" in said.message
    # a LoraEvaluation evaluates its own owner's LoRA, shared or not
    evaluation = {"owner": "bob", "loraRef": {"name": "avatar", "namespace": "studio-a", "owner": "alice"}}
    said = refused(resolve(evaluation, "mine", Catalog("operator", loras=alices)))
    assert said.reason == "LoraOwnerMismatch" and "evaluates a LoRA of its own owner" in said.message


@pytest.mark.parametrize("room", ROOMS)
def test_a_version_is_evaluable_with_its_dataset_and_the_provider_that_trained_it(room: Room) -> None:
    evaluation = {"owner": "alice", "loraRef": {"name": "avatar", "version": 1}}
    found = resolve(evaluation, "ns", Catalog(room, loras={"avatar": lora("alice", 1, 2)}))
    assert isinstance(found, Resolved) and found.loras == [] and found.lora is not None
    assert (found.lora.version, found.lora.provider, found.lora.trigger_word, found.lora.dataset_uri) == (
        1,
        "fal",
        "tok",
        "s3://b/datasets/v1.zip",
    )
    assert found.lora.model_uri == "s3://b/loras/alice/u-avatar/v1/model.safetensors"
    bare = lora("alice", 1, 2, usable=(UsableVersion(1, "m1"), UsableVersion(2, "m2", dataset_uri="d")))
    said = refused(resolve(evaluation, "ns", Catalog(room, loras={"avatar": bare})))
    assert (said.reason, said.field, said.action) == (
        "LoraNotEvaluable",
        "spec.loraRef",
        "wait" if room == "operator" else "fail",
    )
    assert said.message.startswith("loraRef 'avatar' version 1: it names no dataset archive")
    latest = resolve(
        {"owner": "alice", "loraRef": {"name": "avatar"}}, "ns", Catalog(room, loras={"avatar": bare})
    )
    assert isinstance(latest, Resolved) and latest.lora is not None and latest.lora.dataset_uri == "d"
    # a video LoRA: drawing FLUX pictures of it would bill for nothing it loads (issue 77)
    video = lora("alice", 1, usable=(UsableVersion(1, "m1", dataset_uri="d", base_model="wan-2.2-t2v-a14b"),))
    said = refused(resolve(evaluation, "ns", Catalog(room, loras={"avatar": video})))
    assert (said.reason, said.field) == ("LoraNotEvaluable", "spec.loraRef")
    assert said.message.startswith(
        "loraRef 'avatar' version 1 is a Wan 2.2 A14B T2V LoRA (training.baseModel wan-2.2-t2v-a14b): a "
        "likeness evaluation draws pictures with FLUX, which a Wan 2.2 A14B T2V LoRA does not load"
    )


def picture(owner: str = "alice", phase: str = "Succeeded") -> ImageState:
    lineage = (ResolvedLora(uri="s3://b/l.safetensors", name="avatar", uid="u-avatar", version=1),)
    return ImageState(
        "still",
        owner,
        phase,
        "u-still",
        2,
        versions=((1, ("s3://b/v1/1.png",)), (2, ("s3://b/v2/1.png", "s3://b/v2/2.png"))),
        loras=((2, lineage),),
    )


def video(owner: str = "alice", **ref: Any) -> dict[str, Any]:
    return {"owner": owner, "prompt": "waves", "imageRef": {"name": "still", **ref}}


@pytest.mark.parametrize("room", ROOMS)
def test_an_image_ref_resolves_to_a_picture_or_says_why_not(room: Room) -> None:
    catalog = Catalog(room, image=picture(), store="<store>")
    found = resolve(video(image=2), "ns", catalog)
    assert isinstance(found, Resolved) and found.image is not None
    assert (found.image.uri, found.image.uid, found.image.version, found.image.image) == (
        "s3://b/v2/2.png",
        "u-still",
        2,
        2,
    )
    assert [(lora.name, lora.version) for lora in found.image.loras] == [("avatar", 1)]
    by_url = resolve({"owner": "alice", "image": {"url": "https://x/p.png"}}, "ns", catalog)
    assert isinstance(by_url, Resolved) and by_url.image is not None and by_url.image.uri == "https://x/p.png"
    cases = {
        "ImageNotFound": resolve(video(), "ns", Catalog(room, store="<store>")),
        "ImageOwnerMismatch": resolve(video("bob"), "ns", catalog),
        "ImageVersionNotFound": resolve(video(version=3), "ns", catalog),
        "ImageNotReady": resolve(
            video(), "ns", Catalog(room, image=ImageState("still", "alice", "Running", "u", 0))
        ),
    }
    for reason, found_ in cases.items():
        said = refused(found_)
        assert (said.reason, said.field, said.action) == (
            reason,
            "spec.imageRef",
            "wait" if room == "operator" else "fail",
        )
        assert said.message.startswith("imageRef 'still'")
    said = refused(resolve(video(version=1, image=2), "ns", catalog))
    assert said.message == (
        "imageRef 'still' image 2: version 1 of ImageGeneration 'still' has 1 image; name one of them "
        "(image: 1 to 1)"
    )
    said = refused(resolve(video(version=3), "ns", catalog))
    assert said.message == (
        "imageRef 'still' version 3: ImageGeneration 'still' has no usable version 3 (usable versions: v1, "
        "v2); pin another, or leave version out for its latest"
    )
