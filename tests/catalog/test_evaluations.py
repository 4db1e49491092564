"""A LoRA version's likeness history in the record (catalog/evaluations.py): re-evaluations are
recorded once, survive the operator writing the record again from the resource's status, leave
the version's verdict its run's own unless a person chooses another (docs/likeness.md#one-verdict-
per-version) with every other evaluation listed, and count their cost apart from status.cost, also
once the version is deleted."""

from __future__ import annotations

from typing import Any

from contentgen.catalog import to_record
from contentgen.catalog.document import without_versions
from contentgen.catalog.evaluations import MAX_EVALUATIONS, with_evaluation, with_verdict_choice
from contentgen.catalog.queries import fold_spend
from contentgen.catalog.verdicts import choosable
from tests.catalog.factory import lora_doc
from tests.harness.evaluations import LATER, evaluation, scoring, trained, unmeasured


def test_the_runs_own_verdict_stands_and_the_others_are_listed() -> None:
    doc = with_evaluation(trained(), evaluation(1), now=LATER)
    assert doc is not None
    doc = with_evaluation(doc, evaluation(2), now=LATER)
    assert doc is not None
    version = to_record(doc).wire()["versions"][0]
    # the run measured its LoRA (poor 0.20): two later re-evaluations do not silently replace it
    assert version["likenessEvaluation"] == 0 and version["likeness"]["median"] == 0.2
    assert (version["likenessChoice"]["how"], version["likenessChoice"]["evaluation"]) == ("run", 0)
    assert version["likenessEntry"] is None
    assert [(h["evaluation"], h["likeness"]["median"], h["by"]) for h in version["likenessHistory"]] == [
        (1, 0.51, "cli"),
        (2, 0.52, "cli"),
    ]
    assert {a["uri"].rsplit("/", 2)[1] for a in version["artifacts"] if "likeness" in a["uri"]} == {
        "e1",
        "e2",
    }
    # the other version is untouched
    other = to_record(doc).wire()["versions"][1]
    assert other["likenessEvaluation"] == 0 and other["likenessHistory"] == []


def test_an_outside_scoring_or_an_unmeasured_evaluation_never_replaces_a_measured_verdict() -> None:
    """Issue 45: scoring one coffee photograph against v2, or an offline "Evaluate again", flipped v2
    from good 0.69 to no-faces."""
    doc = trained()
    doc["versions"][0]["likeness"] = {"verdict": "good", "median": 0.69}
    for entry in (scoring(1, "no-faces", None), unmeasured(2), scoring(3)):
        changed = with_evaluation(doc, entry, now=LATER)
        assert changed is not None
        doc = changed
        version = to_record(doc).wire()["versions"][0]
        assert (version["likeness"]["verdict"], version["likeness"]["median"]) == ("good", 0.69)
        assert version["likenessEvaluation"] == 0 and version["likenessSource"] == ""
    sources = [(h["evaluation"], h.get("source", "")) for h in version["likenessHistory"]]
    assert sources == [(1, "pictures"), (2, ""), (3, "pictures")]


def test_a_version_whose_run_measured_nothing_takes_its_first_measured_evaluation() -> None:
    """A version trained before the evaluation existed, or whose evaluation saw no face or was
    skipped: the first re-evaluation of its generated pictures that measured something is its
    verdict; an outside scoring never is, and later ones do not replace it."""
    doc = trained()
    doc["versions"][0]["likeness"] = {"verdict": "skipped", "median": None}
    only_pictures = with_evaluation(doc, scoring(1), now=LATER)
    assert only_pictures is not None
    version = to_record(only_pictures).wire()["versions"][0]
    assert version["likeness"]["verdict"] == "skipped" and version["likenessChoice"]["how"] == "run"
    measured = with_evaluation(only_pictures, evaluation(2), now=LATER)
    assert measured is not None
    later = with_evaluation(measured, evaluation(3), now=LATER)
    assert later is not None
    version = to_record(later).wire()["versions"][0]
    assert version["likenessEvaluation"] == 2 and version["likeness"]["median"] == 0.52
    assert version["likenessChoice"]["how"] == "first-measured"
    assert version["likenessEntry"]["by"] == "cli" and version["likenessEntry"]["provider"] == "fal"
    assert [h["evaluation"] for h in version["likenessHistory"]] == [0, 1, 3]
    # no evaluation of its own at all, outside pictures only: no verdict on the LoRA
    bare = trained()
    bare["versions"][0].pop("likeness")
    scored = with_evaluation(bare, scoring(1), now=LATER)
    assert scored is not None
    version = to_record(scored).wire()["versions"][0]
    assert version["likeness"] is None and [h["evaluation"] for h in version["likenessHistory"]] == [1]


def test_a_person_chooses_another_evaluation_as_the_verdict() -> None:
    doc = with_evaluation(trained(), evaluation(1), now=LATER)
    assert doc is not None
    for entry in (scoring(2), unmeasured(3)):
        changed = with_evaluation(doc, entry, now=LATER)
        assert changed is not None
        doc = changed
    version = doc["versions"][0]
    assert choosable(version, 1) == ""
    assert "scored pictures made elsewhere" in choosable(version, 2)
    assert "measured nothing (no-faces)" in choosable(version, 3)
    assert choosable(version, 9).startswith("evaluation: e9 is not an evaluation of version 1")
    choice = {
        "choice": 1,
        "version": 1,
        "evaluation": 1,
        "by": "cli:alice",
        "at": LATER,
        "note": "seeds 3, 4",
    }
    chosen = with_verdict_choice(doc, choice, now=LATER)
    assert chosen is not None and with_verdict_choice(chosen, choice, now=LATER) is None
    version = to_record(chosen).wire()["versions"][0]
    assert version["likenessEvaluation"] == 1 and version["likeness"]["median"] == 0.51
    assert version["likenessChoice"]["how"] == "chosen" and version["likenessChoice"]["by"] == "cli:alice"
    assert [h["evaluation"] for h in version["likenessHistory"]] == [0, 2, 3]
    # choosing the run's own again goes back
    back = with_verdict_choice(chosen, {**choice, "choice": 2, "evaluation": 0}, now=LATER)
    assert back is not None
    assert to_record(back).wire()["versions"][0]["likeness"]["median"] == 0.2


def test_recorded_once_and_counted_once() -> None:
    doc = with_evaluation(trained(), evaluation(1), now=LATER)
    assert doc is not None
    assert with_evaluation(doc, evaluation(1), now=LATER) is None  # a second recorder changes nothing
    cost = to_record(doc).wire()["cost"]
    assert cost["evaluationsUsd"] == 0.42 and cost["byMonth"]["2025-03"] >= 0.42
    spend = fold_spend([doc])
    runs = sum(((doc.get("cost") or {}).get("byMonth") or {}).values())
    assert spend.by_month["2025-03"] == round(runs + 0.42, 6) and spend.by_owner["alice"] == round(
        runs + 0.42, 6
    )


def test_the_operator_writing_the_record_again_keeps_the_history_and_its_cost() -> None:
    doc = with_evaluation(trained(), evaluation(1), now=LATER)
    assert doc is not None
    again = lora_doc("lora-1", versions=2, previous=doc)  # the status knows nothing of it
    version = to_record(again).wire()["versions"][0]
    assert version["likenessEvaluation"] == 0 and version["likeness"]["median"] == 0.2
    assert [h["evaluation"] for h in version["likenessHistory"]] == [1]
    assert any(a["uri"].endswith("/e1/likeness-grid.jpg") for a in version["artifacts"])
    assert again["evaluationCost"] == doc["evaluationCost"]


def test_a_deleted_version_keeps_its_cost_counted_once() -> None:
    doc = with_evaluation(trained(), evaluation(1), now=LATER)
    assert doc is not None
    gone = without_versions(doc, [1], at=LATER, by="cli")
    assert to_record(gone).wire()["cost"]["evaluationsUsd"] == 0.42
    # an unrecorded evaluation of the deleted version, recorded late: its money counts, once
    late = with_evaluation(gone, evaluation(2, cost=0.1), now=LATER)
    assert late is not None and to_record(late).wire()["cost"]["evaluationsUsd"] == 0.52
    assert with_evaluation(late, evaluation(2, cost=0.1), now=LATER) is None


def test_a_version_keeps_its_newest_evaluations() -> None:
    doc: dict[str, Any] | None = trained()
    for number in range(1, MAX_EVALUATIONS + 4):
        assert doc is not None
        doc = with_evaluation(doc, evaluation(number, cost=0.01), now=LATER)
    assert doc is not None
    version = doc["versions"][0]
    assert len(version["evaluations"]) == MAX_EVALUATIONS and version["olderEvaluations"] == 3
    assert version["evaluations"][0]["evaluation"] == 4
    assert to_record(doc).wire()["cost"]["evaluationsUsd"] == round(0.01 * (MAX_EVALUATIONS + 3), 6)
