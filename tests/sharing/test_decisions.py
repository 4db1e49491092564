"""Sharing's decisions (api/sharing.py) and the operator's loraRef to another owner's LoRA: used by
the owner it was shared with, refused for a third owner (LoraNotShared, nothing started)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contentgen.api import KINDS
from contentgen.api.sharing import (
    BadGrant,
    Grant,
    access_of,
    annotation_of,
    grant,
    grants_of,
    may_download,
    may_see,
    may_use,
    parse_annotation,
    with_grant,
    without_grant,
)
from contentgen.controller.decide import Observed, World, decide
from contentgen.controller.observe import LoraState, lora_state
from contentgen.controller.preview import render_for_manifest  # noqa: F401  (imports cleanly)
from tests.harness.conditions import reason
from tests.harness.controller import listed_lora

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MODEL = "s3://bkt/loras/alice/lu/v2/model.safetensors"


def test_grants_parse_from_the_annotation_and_back() -> None:
    grants, problem = parse_annotation(" owner:bob=use, group:artists=read,carol ")
    assert problem == ""
    assert grants == (Grant("owner:bob", "use"), Grant("group:artists", "read"), Grant("owner:carol", "read"))
    assert annotation_of(grants) == "owner:bob=use,group:artists=read,owner:carol=read"
    kept, problem = parse_annotation("owner:bob=use,group:artists=use,owner:BAD=read")
    assert kept == (Grant("owner:bob", "use"),)
    assert (
        "group:artists: a group is given read only" in problem and "'owner:BAD' is not a grantee" in problem
    )


def test_who_may_see_download_and_use() -> None:
    grants = (Grant("owner:bob", "use"), Grant("group:artists", "read"))
    assert access_of(grants, "alice", ["alice"]) == "owner"
    assert access_of(grants, "alice", ["bob"]) == "use"
    assert may_see(grants, "alice", ["bob"]) and not may_download(grants, "alice", ["bob"])
    assert access_of(grants, "alice", ["carol"], ["artists"]) == "read"
    assert not may_see(grants, "alice", ["carol"]) and not may_see(grants, "alice", ["carol"], ["staff"])
    assert may_use(grants, "alice", "bob") and may_use((), "alice", "alice")
    assert not may_use(grants, "alice", "carol")
    assert not may_use((Grant("owner:carol", "read"),), "alice", "carol")  # read is not use


def test_grants_change_one_grantee_at_a_time() -> None:
    grants = with_grant((), grant("bob", "read"))
    grants = with_grant(grants, grant("owner:bob", "use", by="alice", at="2026-01-01T00:00:00Z"))
    assert grants == (Grant("owner:bob", "use", "alice", "2026-01-01T00:00:00Z"),)
    assert grants_of({"shares": [g.wire() for g in grants] + [{"to": "nonsense"}]}) == grants
    assert without_grant(grants, "bob") == ((), True) and without_grant((), "bob") == ((), False)
    with pytest.raises(BadGrant, match="give read"):
        grant("bob", "write")


def image(owner: str, ref: dict[str, object]) -> Observed:
    spec = {
        "owner": owner,
        "provider": "offline",
        "prompt": "p",
        "model": "flux-lora",
        "loras": [{"loraRef": ref}],
    }
    return Observed(KINDS["ImageGeneration"], "pic", "studio-b", "img-uid", 1, spec, {})


def alices_lora(annotation: str | None) -> LoraState:
    body = {
        "metadata": {
            "name": "avatar",
            "namespace": "studio-a",
            "uid": "lu",
            "annotations": {"contentgen.io/shared-with": annotation} if annotation else {},
        },
        "spec": {"owner": "alice"},
        "status": {"phase": "Succeeded", "latestVersion": 2, "versions": [listed_lora(2, MODEL)]},
    }
    return lora_state(body)


REF = {"name": "avatar", "namespace": "studio-a", "owner": "alice"}


def test_a_lora_shared_for_use_is_used_by_the_second_owner() -> None:
    lora = alices_lora("owner:bob=use")
    decision = decide(image("bob", REF), World(now=NOW, loras={"studio-a/avatar": lora}))
    assert decision.job is not None
    used = decision.job.loras[0]
    assert (used.uri, used.uid, used.version, used.name) == (MODEL, "lu", 2, "avatar")


def test_a_third_owner_is_refused_before_anything_runs() -> None:
    lora = alices_lora("owner:bob=use,owner:carol=read")
    decision = decide(image("carol", REF), World(now=NOW, loras={"studio-a/avatar": lora}))
    assert decision.job is None and reason(decision.status) == "LoraNotShared"
    message = str(decision.status["message"])
    assert "has not shared it with owner 'carol' for use" in message
    assert (
        "kubectl annotate loratraining/avatar -n studio-a "
        "contentgen.io/shared-with=owner:bob=use,owner:carol=use --overwrite" in message
    )
    assert any(e.reason == "LoraNotShared" and e.type == "Warning" for e in decision.events)


def test_another_owners_lora_must_be_named_with_its_owner() -> None:
    lora = alices_lora("owner:bob=use")
    unnamed = {"name": "avatar", "namespace": "studio-a"}
    decision = decide(image("bob", unnamed), World(now=NOW, loras={"studio-a/avatar": lora}))
    assert decision.job is None and reason(decision.status) == "LoraOwnerMismatch"
    assert "loraRef.owner: alice" in str(decision.status["message"])
    wrong = {"name": "avatar", "namespace": "studio-a", "owner": "mallory"}
    decision = decide(image("alice", wrong), World(now=NOW, loras={"studio-a/avatar": lora}))
    assert decision.job is None and reason(decision.status) == "LoraOwnerMismatch"


def test_a_lora_evaluation_evaluates_its_own_owners_lora_only() -> None:
    lora = alices_lora("owner:bob=use")
    spec = {"owner": "bob", "provider": "offline", "loraRef": REF}
    res = Observed(KINDS["LoraEvaluation"], "again", "studio-b", "ev-uid", 1, spec, {})
    decision = decide(res, World(now=NOW, loras={"studio-a/avatar": lora}))
    assert decision.job is None and reason(decision.status) == "LoraOwnerMismatch"


def test_an_address_of_another_owners_output_waits_until_shared_and_is_audited() -> None:
    """The operator's check of a spec's addresses (store/access.py through World.crossed, as the
    reconciler reads the grants off its indexes): unshared, the resource waits InputNotShared with a
    Warning and no Job; shared for use, its Job's snapshot carries the grant for the worker's own
    check and its credentials, and an Event names both owners and the key's folder."""
    from contentgen.api.inputs import inputs
    from contentgen.store.access import StorePlace, crossings

    place = StorePlace.of("s3://bkt", "http://store:9000")
    spec = {
        "owner": "bob",
        "provider": "offline",
        "prompt": "p",
        "model": "flux-lora",
        "loras": [{"url": MODEL}],
    }
    res = Observed(KINDS["ImageGeneration"], "pic", "studio-b", "img-uid", 1, spec, {})

    def world(grants: str) -> World:
        found = crossings(inputs(res.kind.spec, spec), "bob", place, lambda uid: parse_annotation(grants)[0])
        return World(now=NOW, crossed=tuple(found))

    refused = decide(res, world("owner:bob=read"))  # read is not use
    assert refused.job is None and reason(refused.status) == "InputNotShared"
    assert refused.status["message"] == (
        "spec.loras[0].url: loras/alice/lu/… belongs to owner 'alice', who has not shared it with owner "
        "'bob' (spec.owner) for use; name an output of owner 'bob', or have 'alice' share it for use "
        "(docs/sharing.md)"
    )
    assert [e.type for e in refused.events if e.reason == "InputNotShared"] == ["Warning"]
    started = decide(res, world("owner:bob=use"))
    assert started.job is not None
    assert [(s.uid, s.owner, s.access) for s in started.job.shared] == [("lu", "alice", "use")]
    used = [e.message for e in started.events if e.reason == "SharedInputUsed"]
    assert used == [
        "spec.loras[0].url uses loras/alice/lu/… of owner 'alice', shared with owner 'bob' for use"
    ]
