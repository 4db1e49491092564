"""Per-asset usage's `usedIn` (catalog/usage.py) on every backend: every consumer relation lineage
knows (a LoRA's image generations, its evaluations and the videos animating a picture made with
it, the version animated; an image generation's videos), listed as far as the caller may see them (its own
records, another owner's shared with it or its group), counted for the asset's owner and never
named otherwise; carol, who may see none of them, sees nothing."""

from __future__ import annotations

from contentgen.catalog import Catalog
from contentgen.catalog.usage import AssetUsage, usage_of
from tests.harness.usage import LORA, fill


def usage(catalog: Catalog, uid: str, who: str | None, groups: tuple[str, ...] = ()) -> AssetUsage:
    doc = catalog.record(uid)
    assert doc is not None
    return usage_of(
        catalog,
        doc,
        who,
        0.023,
        owner_view=who is None or who == doc.get("owner"),
        owners=(who,) if who else (str(doc.get("owner")),),
        groups=groups,
    )


def listed(found: AssetUsage) -> list[tuple[str, str, list[int], list[str]]]:
    return [(c.id, c.owner, c.versions, c.relations) for c in found.used_in]


def test_a_loras_consumers_are_its_pictures_and_the_videos_animating_them(catalog: Catalog) -> None:
    fill(catalog)
    alice = usage(catalog, LORA, "alice")
    # newest first: bob's clip he shared with her, then her own; none of bob's others by name
    assert listed(alice) == [
        ("a-eval", "alice", [1], ["evaluation"]),
        ("b-vid-shared", "bob", [2], ["picture"]),
        ("a-vid-pic", "alice", [2], ["picture"]),
        ("a-mixed", "alice", [2], ["lora"]),
        ("a-img", "alice", [2], ["lora"]),
    ]  # not a-vid-mixed: the version of the picture it animates was made without the LoRA
    assert alice.used_in_total == 5
    assert alice.used_by_other_owners == 3  # bob's picture, his clip of it, his shared clip
    assert not {"fox", "fox-clip"} & {c.name for c in alice.used_in}
    # in the group bob shared his picture with, she sees it too (his other clip stays unnamed)
    grouped = usage(catalog, LORA, "alice", groups=("artists",))
    assert [c.id for c in grouped.used_in] == [
        "a-eval",
        "b-vid-shared",
        "a-vid-pic",
        "a-mixed",
        "b-img",
        "a-img",
    ]
    assert grouped.used_in_total == 6 and grouped.used_by_other_owners == 3


def test_a_shared_loras_user_sees_his_own_and_nothing_of_its_owners(catalog: Catalog) -> None:
    fill(catalog)
    bob = usage(catalog, LORA, "bob")
    assert listed(bob) == [
        ("b-vid-shared", "bob", [2], ["picture"]),
        ("b-vid-pic", "bob", [2], ["picture"]),
        ("b-img", "bob", [2], ["lora"]),
    ]
    assert bob.used_in_total == 3 and bob.used_by_other_owners == 0  # not its owner: no count
    # carol may see none of them: nothing listed, nothing counted
    carol = usage(catalog, LORA, "carol", groups=("painters",))
    assert carol.used_in == [] and carol.used_in_total == 0 and carol.used_by_other_owners == 0
    # the catalog's administrator sees every one
    admin = usage(catalog, LORA, None)
    every = {"a-img", "b-img", "a-mixed", "a-vid-pic", "b-vid-pic", "b-vid-shared", "a-eval"}
    assert {c.id for c in admin.used_in} == every and admin.used_in_total == 7


def test_an_image_generations_consumers_are_the_videos_animating_its_pictures(catalog: Catalog) -> None:
    fill(catalog)
    assert listed(usage(catalog, "a-img", "alice")) == [("a-vid-pic", "alice", [1], ["image"])]
    assert listed(usage(catalog, "a-plain", "alice")) == [("a-vid-plain", "alice", [1], ["image"])]
    assert listed(usage(catalog, "a-mixed", "alice")) == [("a-vid-mixed", "alice", [1], ["image"])]
    both = usage(catalog, "b-img", "bob")
    assert [c.id for c in both.used_in] == ["b-vid-shared", "b-vid-pic"] and both.used_by_other_owners == 0
    # bob's picture, seen by alice through the group artists: of its clips, only the one bob
    # shared with her is named; the other is not counted to her either (she is not its owner)
    seen = usage(catalog, "b-img", "alice", groups=("artists",))
    assert listed(seen) == [("b-vid-shared", "bob", [1], ["image"])]
    assert seen.used_in_total == 1 and seen.used_by_other_owners == 0
    assert usage(catalog, "b-img", "carol").used_in == []
    # a video is used by nothing lineage knows
    clip = usage(catalog, "a-vid-pic", "alice")
    assert clip.used_in == [] and clip.used_in_total == 0
