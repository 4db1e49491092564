"""A LoRA version's likeness history in the record (catalog/evaluations.py): re-evaluations are
recorded once, survive the operator writing the record again from the resource's status, show the
newest as the version's likeness with the earlier ones listed, and count their cost apart from
status.cost, also once the version is deleted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from contentgen.catalog import to_record
from contentgen.catalog.document import without_versions
from contentgen.catalog.evaluations import MAX_EVALUATIONS, with_evaluation
from contentgen.catalog.queries import fold_spend
from tests.catalog.factory import T0, lora_doc

LATER = T0 + timedelta(days=1)


def evaluation(
    number: int, *, version: int = 1, cost: float = 0.42, seeds: list[int] | None = None
) -> dict[str, Any]:
    folder = f"s3://bucket/loras/alice/lora-1/v{version}/likeness/e{number}/"
    return {
        "evaluation": number,
        "version": version,
        "at": "2025-03-02T12:00:00Z",
        "by": "cli",
        "provider": "fal",
        "promptSet": "likeness-v1",
        "seeds": seeds or [number],
        "costUsd": cost,
        "likeness": {
            "verdict": "good",
            "median": 0.5 + number / 100,
            "gridUri": folder + "likeness-grid.jpg",
        },
        "artifacts": [{"uri": folder + "likeness-grid.jpg", "sizeBytes": 10, "contentType": "image/jpeg"}],
    }


def trained() -> dict[str, Any]:
    doc = lora_doc("lora-1", versions=2)
    doc["versions"][0]["likeness"] = {"verdict": "poor", "median": 0.2}  # what its run reported
    return doc


def test_the_newest_is_shown_and_the_earlier_ones_listed() -> None:
    doc = with_evaluation(trained(), evaluation(1), now=LATER)
    assert doc is not None
    doc = with_evaluation(doc, evaluation(2), now=LATER)
    assert doc is not None
    version = to_record(doc).wire()["versions"][0]
    assert version["likenessEvaluation"] == 2 and version["likeness"]["median"] == 0.52
    assert [(h["evaluation"], h["likeness"]["median"]) for h in version["likenessHistory"]] == [
        (0, 0.2),
        (1, 0.51),
    ]
    assert {a["uri"].rsplit("/", 2)[1] for a in version["artifacts"] if "likeness" in a["uri"]} == {
        "e1",
        "e2",
    }
    # the other version is untouched
    other = to_record(doc).wire()["versions"][1]
    assert other["likenessEvaluation"] == 0 and other["likenessHistory"] == []


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
    assert version["likenessEvaluation"] == 1 and version["likeness"]["median"] == 0.51
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
