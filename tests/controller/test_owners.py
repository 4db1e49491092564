"""Owners bound to namespaces: the operator's rule (controller/owners.py) and its decision: a
resource whose owner its namespace does not allow waits, Stalled, OwnerNotAllowed, and starts
nothing; allowed again, it starts."""

from __future__ import annotations

import pytest

from contentgen.controller.decide import World, decide
from contentgen.controller.owners import ANNOTATION, OwnerPolicy, allowed, owner_problem
from tests.harness.controller import NOW, apply, cond, reason, resource

OPEN = OwnerPolicy()
MAPPED = OwnerPolicy(namespaces={"team-a": ["alice", "bob"], "locked": []}, default=[])


@pytest.mark.parametrize(
    ("namespace", "annotation", "policy", "owner", "ok"),
    [
        ("team-a", "alice,bob", OPEN, "alice", True),
        ("team-a", " alice , bob ", OPEN, "bob", True),  # spaces around names do not matter
        ("team-a", "alice,bob", OPEN, "carol", False),
        ("team-a", "", OPEN, "alice", False),  # an empty annotation allows no one
        ("team-a", ",,", OPEN, "alice", False),
        ("team-a", "*", MAPPED, "carol", True),  # the annotation comes first
        ("team-a", None, MAPPED, "bob", True),  # then the chart's mapping
        ("team-a", None, MAPPED, "carol", False),
        ("locked", None, MAPPED, "alice", False),
        ("elsewhere", None, MAPPED, "alice", False),  # then the default: none
        ("elsewhere", None, OPEN, "anyone", True),  # the chart's default: any
        ("elsewhere", None, OwnerPolicy(default=["ops"]), "ops", True),
        ("team-a", "alice-x", OPEN, "alice", False),  # whole names only
    ],
)
def test_the_rule(namespace: str, annotation: str | None, policy: OwnerPolicy, owner: str, ok: bool) -> None:
    assert (owner_problem(namespace, owner, annotation, policy) == "") is ok


def test_the_message_names_the_annotation_and_the_fix() -> None:
    message = owner_problem("team-a", "alice", "bob,carol", OPEN)
    assert message.startswith("owner 'alice' is not allowed in namespace team-a: its annotation ")
    assert f"{ANNOTATION} allows bob, carol" in message
    assert f"kubectl annotate namespace team-a {ANNOTATION}=bob,carol,alice --overwrite" in message
    mapped = owner_problem("elsewhere", "alice", None, MAPPED)
    assert "the chart's ownerPolicy.default" in mapped and f"no {ANNOTATION} annotation" in mapped
    assert "allows no owner" in mapped
    assert allowed("team-a", None, MAPPED)[0] == ["alice", "bob"]


def test_settings_read_the_chart_value() -> None:
    policy = OwnerPolicy.model_validate({"namespaces": {"team-a": ["alice"]}, "default": []})
    assert policy == OwnerPolicy(namespaces={"team-a": ["alice"]}, default=[])
    with pytest.raises(ValueError, match="extra"):
        OwnerPolicy.model_validate({"namespace": {}})


def test_a_resource_whose_owner_is_not_allowed_waits_stalled_and_starts_nothing() -> None:
    res = resource("ImageGeneration")
    problem = owner_problem("ns", "alice", "bob", OPEN)
    decision = decide(res, World(now=NOW, owner_problem=problem))
    assert decision.job is None and decision.waiting == "OwnerNotAllowed"
    status = decision.status
    assert (
        status["phase"] == "Pending" and reason(status) == "OwnerNotAllowed" and status["message"] == problem
    )
    assert cond(status, "Stalled") == "True" and cond(status, "Ready") == "False"
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "OwnerNotAllowed")]
    # It comes before every other wait: nothing about this resource is acted on.
    both = decide(res, World(now=NOW, owner_problem=problem, missing_credentials="FAL_KEY"))
    assert both.waiting == "OwnerNotAllowed"
    # The namespace allows the owner now: it starts.
    started = decide(apply(res, decision), World(now=NOW))
    assert started.job is not None and reason(started.status) == "JobCreated"
