"""POST /api/assets/REF/versions/N/verdict on a laptop's API (`contentgen api --local`, issue 67): one
of the version's evaluations becomes its verdict, recorded as a numbered choice beside the version
(as `contentgen assets promote --evaluation` records it), nothing written over; 0 goes back to the
run's own; an evaluation of pictures made elsewhere, one that measured nothing, one the version does
not have, a version it does not have, another owner and an API that does not create are refused,
each with a status the OpenAPI document lists (documented.py). The cluster's answer (the
LoraTraining's annotation) is tests/httpapi/test_kube.py's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from contentgen.catalog import Catalog
from contentgen.catalog.evaluations import with_evaluation
from contentgen.httpapi import create_app
from contentgen.httpapi.creators import LocalCreator
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore
from tests.harness.evaluations import LATER, evaluation, scoring, unmeasured
from tests.harness.scoring import score_client, score_settings
from tests.httpapi.conftest import auth
from tests.httpapi.documented import Answers

VERDICT = "/api/assets/{uid}/versions/{version}/verdict"


def with_evaluations(catalog: Catalog, uid: str) -> None:
    """Version 1 evaluated again (e1, good, median 0.51), pictures made elsewhere scored (e2) and an
    offline evaluation that saw no face (e3); its run's own report poor (median 0.2)."""

    def change(doc: dict[str, Any] | None) -> dict[str, Any]:
        assert doc is not None
        doc["versions"][0]["likeness"] = {"verdict": "poor", "median": 0.2}
        for entry in (evaluation(1), scoring(2), unmeasured(3)):
            changed = with_evaluation(doc, entry, now=LATER)
            assert changed is not None
            doc = changed
        return doc

    catalog.modify(uid, change)


@pytest_asyncio.fixture
async def http(
    trained: tuple[Catalog, LocalStore, str], tokens_file: Path, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, LocalStore, str]]:
    catalog, store, uid = trained
    with_evaluations(catalog, uid)
    creator = LocalCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "work")
    )
    answers = Answers(
        create_app(
            score_settings(store, tokens_file, "local"), catalog=catalog, store=lambda: store, creator=creator
        )
    )
    async with score_client(answers) as client:
        yield client, store, uid
    creator.close()
    assert answers.undocumented() == []


@pytest.mark.asyncio
async def test_a_chosen_evaluation_is_the_verdict_and_zero_goes_back(
    http: tuple[httpx.AsyncClient, LocalStore, str],
) -> None:
    client, store, uid = http
    path = VERDICT.format(uid=uid, version=1)
    done = await client.post(path, json={"evaluation": 1, "note": "seeds 1"}, headers=auth("alice"))
    assert done.status_code == 200, done.text
    made = done.json()
    assert (made["id"], made["choice"], made["evaluation"], made["by"], made["note"]) == (
        uid, 1, 1, "alice", "seeds 1",
    )  # fmt: skip
    kept = json.loads(store.get_bytes(f"loras/alice/{uid}/v1/likeness/choices/c1.json"))
    assert (kept["evaluation"], kept["by"]) == (1, "alice")
    version = (await client.get(f"/api/jobs/{uid}", headers=auth("alice"))).json()["versions"][0]
    assert version["likenessEvaluation"] == 1 and version["likeness"]["median"] == 0.51
    assert version["likenessChoice"]["how"] == "chosen" and version["likenessChoice"]["by"] == "alice"

    back = await client.post(path, json={"evaluation": 0}, headers=auth("ops"))  # an admin acts for alice
    assert back.status_code == 200 and back.json()["choice"] == 2, back.text
    assert json.loads(store.get_bytes(f"loras/alice/{uid}/v1/likeness/choices/c1.json")) == kept
    version = (await client.get(f"/api/jobs/{uid}", headers=auth("alice"))).json()["versions"][0]
    assert version["likenessEvaluation"] == 0 and version["likeness"]["median"] == 0.2


@pytest.mark.asyncio
async def test_refusals_name_what_is_wrong(http: tuple[httpx.AsyncClient, LocalStore, str]) -> None:
    client, store, uid = http
    path = VERDICT.format(uid=uid, version=1)
    # requests the document allows: each refusal's code is one of what the document cannot state
    for number, said, code in (
        (2, "e2 scored pictures made elsewhere", "not_applicable"),
        (3, "e3 measured nothing (no-faces)", "not_applicable"),
        (7, "e7 is not an evaluation of version 1 (it has: e0, e1, e2, e3)", "unresolved"),
    ):
        refused = await client.post(path, json={"evaluation": number}, headers=auth("alice"))
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] == code and error["fields"][0]["field"] == "evaluation"
        assert error["message"].startswith(f"evaluation: {said}")
    missing = await client.post(
        VERDICT.format(uid=uid, version=9), json={"evaluation": 1}, headers=auth("alice")
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "version_not_found"
    theirs = await client.post(path, json={"evaluation": 1}, headers=auth("bob"))
    assert theirs.status_code == 404  # not visible to bob
    for bad in ({"evaluation": -1}, {}, {"evaluation": 1, "extra": 1}, {"evaluation": "1"}):
        assert (await client.post(path, json=bad, headers=auth("alice"))).status_code == 400, bad
    assert not list(store.list(f"loras/alice/{uid}/v1/likeness/choices/"))


@pytest.mark.asyncio
async def test_an_api_that_does_not_create_does_not_choose(
    trained: tuple[Catalog, LocalStore, str], tokens_file: Path
) -> None:
    catalog, store, uid = trained
    with_evaluations(catalog, uid)
    answers = Answers(
        create_app(score_settings(store, tokens_file, "off"), catalog=catalog, store=lambda: store)
    )
    async with score_client(answers) as client:
        refused = await client.post(
            VERDICT.format(uid=uid, version=1), json={"evaluation": 1}, headers=auth("alice")
        )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "create_disabled"
    assert "contentgen.io/verdicts='{\"1\": 1}'" in refused.json()["error"]["message"]
    assert not list(store.list(f"loras/alice/{uid}/v1/likeness/choices/"))
    assert answers.undocumented() == []
