"""Budgets through the real operator: a namespace's contentgen.io/budget annotation keeps a Job
from starting while the month's spend plus its estimate would exceed it, and lets it start by
itself once the annotation is raised. The offline provider is priced here (CONTENTGEN_PRICES) as
if it were paid, so every Job runs for real and nothing reaches a provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from contentgen.api import now
from contentgen.controller.budget import ANNOTATION
from contentgen.pricing import month_of
from tests.harness.kube import image as offline_image
from tests.harness.kube import lora
from tests.kube.harness import Cluster, operator, unoperated, wait_for


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module; each test starts the operator with its own prices."""
    with unoperated(tmp_path_factory) as c:
        yield c


def image(name: str, **spec: Any) -> dict[str, Any]:
    return offline_image(name, **{"numImages": 2, **spec})


pytestmark = pytest.mark.timeout(600)


def ready(status: dict[str, Any], type_: str = "Ready") -> tuple[str, str]:
    condition = next(c for c in status.get("conditions") or [] if c["type"] == type_)
    return condition["status"], condition["reason"]


def test_a_budget_exceeded_then_raised(bare: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    c = bare
    # $1 a megapixel: two landscape_4_3 images (1024x768, 1 MP each) cost $2
    prices = {"asOf": "test", "items": {"offline": {"flux-dev": {"megapixel": 1.0}}}}
    monkeypatch.setenv("CONTENTGEN_PRICES", json.dumps(prices))
    c.admin.create(
        "/api/v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team", "annotations": {ANNOTATION: "3"}},
        },
    )
    month = month_of(now())
    with operator(c):
        c.apply(image("first"), "team")
        first = c.wait_phase("ImageGeneration", "team", "first", "Succeeded")
        assert first["cost"]["estimatedUsd"] == 2.0 and first["cost"]["actualUsd"] == 2.0
        assert first["cost"]["byMonth"] == {month: 2.0} and first["cost"]["pricesAsOf"] == "test"

        c.apply(image("second"), "team")  # $2 more: $4 > $3
        waiting = wait_for(
            lambda: (
                (s := c.status("ImageGeneration", "team", "second")).get("conditions")
                and ready(s) == ("False", "BudgetExceeded")
                and s
            ),
            what="BudgetExceeded",
        )
        assert waiting["phase"] == "Pending" and ready(waiting, "Stalled") == ("True", "BudgetExceeded")
        assert waiting["message"].startswith(
            f"the monthly budget of namespace team is $3.00 (annotation {ANNOTATION} on namespace team); "
            f"{month} has spent $2.00 and this run is estimated at $2.00 ($4.00 in all)."
        )
        assert len(c.jobs("team")) == 1  # the second never started
        wait_for(
            lambda: any(
                e["reason"] == "BudgetExceeded" and e["type"] == "Warning" for e in c.events("team", "second")
            ),
            what="a BudgetExceeded event",
        )

        # the budget is raised: it starts by itself
        c.admin.patch(
            "/api/v1/namespaces/team", {"metadata": {"annotations": {ANNOTATION: "namespace=10,owner=4"}}}
        )
        second = c.wait_phase("ImageGeneration", "team", "second", "Succeeded")
        assert second["cost"]["byMonth"] == {month: 2.0} and len(c.jobs("team")) == 2

        # alice has now spent $4 of her $4: a third waits on the owner budget
        c.apply(image("third", numImages=1), "team")
        third = wait_for(
            lambda: (
                (s := c.status("ImageGeneration", "team", "third")).get("conditions")
                and ready(s)[1] == "BudgetExceeded"
                and s
            ),
            what="the owner budget",
        )
        assert "the monthly budget of owner alice is $4.00" in third["message"]
        assert len(c.jobs("team")) == 2

        uid = (c.resource("ImageGeneration", "team", "first") or {})["metadata"]["uid"]
        doc = wait_for(lambda: c.catalog_doc(uid), what="the catalog record")
        assert doc["cost"]["actualUsd"] == 2.0 and doc["cost"]["byMonth"] == {month: 2.0}
        team = {j["metadata"]["name"] for j in c.jobs("team")}
        assert len([job for job in c.runs() if job in team]) == 2  # the third never started
        c.delete("ImageGeneration", "team", "third")  # not left for the next test's operator
        wait_for(lambda: c.resource("ImageGeneration", "team", "third") is None, what="third deleted")


def test_a_budget_for_the_training_only_skips_the_likeness_evaluation(
    bare: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 30: the LoraTraining is not held for its evaluation; it trains, says why it was not
    evaluated, and counts only the training against the budget."""
    c = bare
    # 100 steps at $0.01 = $1.00; the evaluation's 24 pictures at $0.10 = $2.40 more
    items = {"fal-ai/flux-lora-fast-training": {"step": 0.01}, "flux-lora": {"megapixel": 0.1}}
    monkeypatch.setenv("CONTENTGEN_PRICES", json.dumps({"asOf": "test", "items": {"offline": items}}))
    c.admin.create(
        "/api/v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "lean", "annotations": {ANNOTATION: "2"}},
        },
    )
    with operator(c):
        c.apply(lora("avatar", c.media), "lean")
        status = c.wait_phase("LoraTraining", "lean", "avatar", "Succeeded")
        assert status["cost"]["estimatedUsd"] == pytest.approx(1.0)  # the training alone
        likeness = status["likeness"]
        assert likeness["verdict"] == "skipped" and likeness["reasons"][0].startswith(
            "budget: the monthly budget of namespace lean is $2.00"
        )
        assert not likeness.get("gridUri")
        assert status["versions"][0]["likeness"]["verdict"] == "skipped"
        assert ready(status, "LikenessPoor") == ("Unknown", "LikenessUnmeasured")
        wait_for(
            lambda: any(
                e["reason"] == "LikenessSkipped" and e["type"] == "Warning"
                for e in c.events("lean", "avatar")
            ),
            what="a LikenessSkipped event",
        )
