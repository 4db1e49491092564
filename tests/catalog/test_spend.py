"""Spend in the catalog's stats: what each record's runs cost, by owner, type and month, on both
backends. Deleted records count (the money was spent); the storage figures stay as they were."""

from __future__ import annotations

from typing import Any

import pytest

from contentgen.catalog import Catalog
from contentgen.catalog.queries import fold_spend
from tests.catalog.factory import T0, image_doc, lora_doc, transcript_doc


def costing(doc: dict[str, Any], **by_month: float) -> dict[str, Any]:
    doc["cost"] = {
        "estimatedUsd": 1.0,
        "actualUsd": sum(by_month.values()),
        "byMonth": {m.replace("_", "-").removeprefix("m"): usd for m, usd in by_month.items()},
        "currency": "USD",
        "pricesAsOf": "2026-11-22",
    }
    return doc


@pytest.fixture
def spent(catalog: Catalog) -> Catalog:
    docs = [
        costing(lora_doc("a-lora", owner="alice"), m2026_10=2.0, m2026_11=4.0),  # two versions
        costing(image_doc("a-img", owner="alice"), m2026_11=0.05),
        costing(image_doc("a-gone", owner="alice"), m2026_11=0.1),
        costing(transcript_doc("b-tr", owner="bob"), m2026_11=0.25),
        transcript_doc("b-free", owner="bob"),  # recorded before costs were kept
    ]
    for doc in docs:
        catalog.upsert(doc)
    catalog.mark_deleted("a-gone", T0)
    return catalog


def test_spend_by_owner_type_and_month_counts_deleted_records(spent: Catalog) -> None:
    stats = spent.stats(None, 0.023)
    assert stats.total_jobs == 4  # deleted records are left out of the counts...
    spend = stats.spend  # ...but not out of what was spent
    assert spend.total_usd == pytest.approx(6.4)
    assert spend.by_owner == {"alice": pytest.approx(6.15), "bob": pytest.approx(0.25)}
    assert spend.by_type == {
        "image-generation": pytest.approx(0.15),
        "lora-training": pytest.approx(6.0),
        "transcription": pytest.approx(0.25),
    }
    assert spend.by_month == {"2026-10": pytest.approx(2.0), "2026-11": pytest.approx(4.4)}


def test_spend_of_one_owner(spent: Catalog) -> None:
    spend = spent.stats("bob", 0.023).spend
    assert spend.by_owner == {"bob": pytest.approx(0.25)} and spend.total_usd == pytest.approx(0.25)
    assert spent.stats("nobody", 0.023).spend.total_usd == 0


def test_fold_spend_is_pure_and_rounds() -> None:
    rows = [
        {"owner": "a", "type": "t", "cost": {"byMonth": {"2026-01": 0.1, "2026-02": 0.2}}},
        {"owner": "a", "type": "t", "cost": None},
        {"owner": "b", "type": "u", "cost": {"byMonth": {"2026-01": 0.3}}},
    ]
    spend = fold_spend(rows)
    assert spend.wire() == {
        "totalUsd": 0.6,
        "byOwner": {"a": 0.3, "b": 0.3},
        "byType": {"t": 0.3, "u": 0.3},
        "byMonth": {"2026-01": 0.4, "2026-02": 0.2},
        "currency": "USD",
    }
