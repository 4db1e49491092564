"""An evaluation a person chooses as a LoRA version's verdict in a cluster (issue 67,
docs/likeness.md#one-verdict-per-version): the LoraTraining's annotation contentgen.io/verdicts,
{"version": evaluation} or {"version": {"evaluation", "by", "at", "note"}}. The operator follows it
as it follows promoted checkpoints: status.versions[].verdictChoice, a VerdictChosen Event said once
per change, and an entry it cannot follow (a version not listed, an evaluation the catalog's record
says cannot be a verdict, not JSON) said in a Warning VerdictRefused and status.verdictProblem while
the rest holds. The catalog's record then shows the chosen evaluation's report as the version's
likeness, and shows the run's own again when the entry is removed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contentgen.api import Likeness
from contentgen.api.lora import VERDICTS_ANNOTATION, verdicts_asked
from contentgen.catalog import to_record
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.catalog.evaluations import with_evaluation
from contentgen.catalog.versions import version_entries
from contentgen.controller.catalog_sync import verdict_refusals
from contentgen.controller.decide import World, decide
from tests.harness.controller import NOW, apply, job, lora_result, resource
from tests.harness.evaluations import LATER, evaluation, scoring, trained, unmeasured


def finished() -> Any:
    """A LoraTraining whose version 1 succeeded with a good report of its own."""
    res = apply(resource(), decide(resource(), World(now=NOW)))
    made = lora_result(1, 1)
    assert made.lora is not None
    made.lora.likeness = Likeness(verdict="good", median=0.6)
    return apply(res, decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=made)))


def annotated(res: Any, value: str) -> Any:
    return replace(res, annotations={VERDICTS_ANNOTATION: value})


def test_a_chosen_evaluation_is_in_the_status_said_once_and_removed_again() -> None:
    entry = {"evaluation": 2, "by": "alice", "at": "2026-11-24T16:00:00Z", "note": "seeds 3 and 4"}
    res = annotated(finished(), json.dumps({"1": entry}))
    d = decide(res, World(now=NOW, verdict_refusals={(1, 2): ""}))
    assert d.status["versions"][0]["verdictChoice"] == entry
    assert "verdictProblem" not in d.status
    assert [(e.type, e.reason, e.message) for e in d.events] == [
        ("Normal", "VerdictChosen", "version 1: its verdict is evaluation e2's")
    ]
    res = apply(res, d)
    assert decide(res, World(now=NOW, verdict_refusals={(1, 2): ""})).events == []  # said once
    # a plain number is an entry too
    plain = decide(annotated(res, '{"1": 0}'), World(now=NOW, verdict_refusals={(1, 0): ""}))
    assert plain.status["versions"][0]["verdictChoice"] == {"evaluation": 0}
    # the annotation removed: back to the version's own evaluation, said once
    back = decide(replace(res, annotations={}), World(now=NOW))
    assert "verdictChoice" not in back.status["versions"][0]
    assert [e.message for e in back.events] == ["version 1: back to its own evaluation's verdict"]


def test_what_cannot_be_followed_is_said_and_the_rest_holds() -> None:
    res = annotated(finished(), json.dumps({"1": 7, "4": 1}))
    why = "evaluation: e7 is not an evaluation of version 1 (it has: e0, e1)"
    d = decide(res, World(now=NOW, verdict_refusals={(1, 7): why}))
    assert "verdictChoice" not in d.status["versions"][0]
    assert d.status["verdictProblem"] == (
        f"annotation {VERDICTS_ANNOTATION}: version 1: e7 is not an evaluation of version 1 (it has: e0, "
        "e1); version 4 is not listed in the status"
    )
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "VerdictRefused")]
    res = apply(res, d)
    assert decide(res, World(now=NOW, verdict_refusals={(1, 7): why})).events == []  # said once
    # the catalog away: what the status shows is followed, the rest is the record's to check
    unread = decide(annotated(res, '{"1": 7}'), World(now=NOW))
    assert unread.status["versions"][0]["verdictChoice"] == {"evaluation": 7}
    assert "verdictProblem" not in unread.status
    for bad in ("1", '{"1": -1}', '{"1": true}', '{"1": {"by": "alice"}}', '{"one": 1}', "not json"):
        refused = decide(annotated(finished(), bad), World(now=NOW))
        assert "is not a JSON object of version to evaluation" in refused.status["verdictProblem"], bad
        assert "verdictChoice" not in refused.status["versions"][0]
    assert verdicts_asked('{"2": {"evaluation": 1}, "1": 3}') == [(1, 3), (2, 1)]
    assert verdicts_asked("not json") == [] and verdicts_asked(None) == []


def _record(status_version: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """The catalog's version entry after the operator writes a status listing `status_version`,
    and the record's reading of it."""
    res = SimpleNamespace(kind="LoraTraining", status={}, results={}, spec={}, generation=1)
    [entry] = version_entries(res, {"versions": [status_version]}, [before], set())  # type: ignore[arg-type]
    record = to_record({**trained(), "origin": "operator", "versions": [entry]}).wire()
    shown: dict[str, Any] = record["versions"][0]
    return shown


def test_the_record_shows_the_chosen_evaluation_and_its_own_again_once_it_is_removed() -> None:
    doc = trained()
    for entry in (evaluation(1), scoring(2), unmeasured(3)):
        changed = with_evaluation(doc, entry, now=LATER)
        assert changed is not None
        doc = changed
    stored = doc["versions"][0]
    status = {k: v for k, v in stored.items() if k not in ("evaluations", "artifacts", "spec")}
    chosen = _record({**status, "verdictChoice": {"evaluation": 1, "by": "alice", "note": "n"}}, stored)
    assert chosen["likenessEvaluation"] == 1 and chosen["likeness"]["median"] == 0.51
    assert chosen["likenessChoice"] == {
        "how": "chosen", "evaluation": 1, "choice": None, "by": "alice", "at": None, "note": "n",
        "annotation": VERDICTS_ANNOTATION,
    }  # fmt: skip
    # the entry gone from the status (the annotation removed): the stored choice does not linger
    kept = {**stored, "verdictChoice": {"evaluation": 1}}
    back = _record(status, kept)
    assert back["likenessEvaluation"] == 0 and back["likeness"]["median"] == 0.2
    # a choice the operator followed without the record at hand is checked by the record
    for number in (2, 3, 9):
        refused = _record({**status, "verdictChoice": {"evaluation": number}}, stored)
        assert refused["likenessEvaluation"] == 0, number


@pytest.mark.asyncio
async def test_the_operator_reads_why_from_the_catalog(tmp_path: Path) -> None:
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    doc = trained()
    for entry in (evaluation(1), scoring(2)):
        changed = with_evaluation(doc, entry, now=LATER)
        assert changed is not None
        doc = changed
    catalog.upsert(doc)
    op = SimpleNamespace(catalog=catalog)
    found = await verdict_refusals(op, str(doc["_id"]), [(1, 1), (1, 2), (1, 5), (9, 1)])  # type: ignore[arg-type]
    assert found is not None and found[(1, 1)] == "" and (9, 1) not in found
    assert "scored pictures made elsewhere" in found[(1, 2)]
    assert found[(1, 5)].startswith("evaluation: e5 is not an evaluation of version 1")
    assert await verdict_refusals(op, str(doc["_id"]), []) is None  # type: ignore[arg-type]
    assert await verdict_refusals(op, "no-such-uid", [(1, 1)]) is None  # type: ignore[arg-type]
    catalog.close()
