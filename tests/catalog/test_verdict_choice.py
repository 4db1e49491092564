"""A person chooses which evaluation is a LoRA version's verdict (contentgen assets promote
--evaluation, pipeline/likeness/promote.choose_verdict; docs/likeness.md#one-verdict-per-version):
a numbered write-once object beside the version, the record's verdict from then on, refused for
an outside scoring or an evaluation that measured nothing; --evaluation 0 goes back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contentgen.catalog import to_record
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.catalog.evaluations import with_evaluation
from contentgen.pipeline.likeness.promote import NotPromotable, choose_verdict
from contentgen.store import LocalStore
from tests.catalog.factory import T0
from tests.harness.evaluations import LATER, evaluation, scoring, trained, unmeasured


def test_a_chosen_evaluation_is_the_verdict_and_the_choice_is_kept(tmp_path: Path) -> None:
    catalog, store = EmbeddedCatalog(tmp_path / "catalog"), LocalStore(tmp_path / "store")
    doc = trained()
    for entry in (evaluation(1), scoring(2), unmeasured(3)):
        changed = with_evaluation(doc, entry, now=LATER)
        assert changed is not None
        doc = changed
    catalog.upsert(doc)
    uid = str(doc["_id"])
    assert to_record(catalog.get(uid)).wire()["versions"][0]["likenessEvaluation"] == 0  # type: ignore[arg-type]

    for number, why in ((2, "scored pictures made elsewhere"), (3, "measured nothing"), (7, "is not an")):
        with pytest.raises(NotPromotable, match=why):
            choose_verdict(catalog, store, catalog.get(uid), 1, number, by="cli:alice", at=LATER)  # type: ignore[arg-type]
    with pytest.raises(NotPromotable, match="no usable version 5"):
        choose_verdict(catalog, store, catalog.get(uid), 5, 1, by="cli:alice", at=LATER)  # type: ignore[arg-type]
    assert not list(store.list(f"loras/alice/{uid}/v1/likeness/choices/"))  # nothing stored by a refusal

    entry = choose_verdict(catalog, store, catalog.get(uid), 1, 1, by="cli:alice", at=LATER, note="seeds 1")  # type: ignore[arg-type]
    assert (entry["choice"], entry["evaluation"]) == (1, 1)
    kept = json.loads(store.get_bytes(f"loras/alice/{uid}/v1/likeness/choices/c1.json"))
    assert (kept["evaluation"], kept["by"], kept["note"]) == (1, "cli:alice", "seeds 1")
    version = to_record(catalog.get(uid)).wire()["versions"][0]  # type: ignore[arg-type]
    assert version["likenessEvaluation"] == 1 and version["likeness"]["median"] == 0.51
    assert version["likenessChoice"]["how"] == "chosen" and version["likenessChoice"]["note"] == "seeds 1"
    assert any(a["uri"].endswith("/likeness/choices/c1.json") for a in version["artifacts"])

    back = choose_verdict(catalog, store, catalog.get(uid), 1, 0, by="cli:alice", at=T0)  # type: ignore[arg-type]
    assert back["choice"] == 2
    version = to_record(catalog.get(uid)).wire()["versions"][0]  # type: ignore[arg-type]
    assert version["likenessEvaluation"] == 0 and version["likeness"]["median"] == 0.2
    catalog.close()
