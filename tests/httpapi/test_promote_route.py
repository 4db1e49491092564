"""POST /api/assets/REF/versions/N/promote on a laptop's API (`contentgen api --local`): a scored
checkpoint becomes the LoRA version's model, recorded as a numbered promotion beside the version
(who chose, the automatic choice kept), nothing written over; the next local run's loraRef uses it;
a step that was not scored, a version that does not exist, another owner and an API that does not
create are refused, each with a status the OpenAPI document lists (documented.py).

The offline trainer stores no checkpoints, so the record's curve is written in here as a cluster
training's would be (tests/cluster/test_checkpoint_likeness.py promotes a real one)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from contentgen.catalog import Catalog
from contentgen.httpapi import create_app
from contentgen.httpapi.creators import LocalCreator
from contentgen.pipeline.local_run import resolve_locally
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore
from tests.harness.scoring import score_client, score_settings
from tests.httpapi.conftest import auth
from tests.httpapi.documented import Answers

PROMOTE = "/api/assets/{uid}/versions/{version}/promote"
STEPS = (250, 500, 750, 1000)
USES = {"owner": "alice", "loras": [{"loraRef": {"name": "demo-avatar"}}]}  # a spec using the LoRA


def with_curve(catalog: Catalog, store: LocalStore, uid: str) -> None:
    """Version 1 as a training that stored and scored four checkpoints, the automatic choice 750."""

    def change(doc: dict[str, Any] | None) -> dict[str, Any]:
        assert doc is not None
        version = doc["versions"][0]
        prefix = f"loras/alice/{uid}/v1/checkpoints/"
        for step in STEPS:  # the offline trainer's simulated checkpoints are there already (250 to 1000)
            if not store.exists(f"{prefix}step-{step:06d}.safetensors"):
                store.put_once_bytes(
                    f"{prefix}step-{step:06d}.safetensors", b"lora %d" % step, "application/octet-stream"
                )
        points = [
            {
                "step": s,
                "modelUri": store.uri(f"{prefix}step-{s:06d}.safetensors"),
                "verdict": "good",
                "median": 0.5,
            }
            for s in STEPS
        ]
        points[2]["chosen"] = True
        version["likeness"] = {"verdict": "good", "median": 0.5, "checkpoints": points, "chosenStep": 750}
        return {**doc, "rev": int(doc.get("rev") or 0) + 1}

    catalog.modify(uid, change)


@pytest_asyncio.fixture
async def http(
    trained: tuple[Catalog, LocalStore, str],
    tokens_file: Path,
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, Catalog, LocalStore, str]]:
    catalog, store, uid = trained
    with_curve(catalog, store, uid)
    creator = LocalCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "work")
    )
    answers = Answers(
        create_app(
            score_settings(store, tokens_file, "local"), catalog=catalog, store=lambda: store, creator=creator
        )
    )
    async with score_client(answers) as client:
        yield client, catalog, store, uid
    creator.close()
    assert answers.undocumented() == []


@pytest.mark.asyncio
async def test_a_promoted_checkpoint_is_the_model_and_the_automatic_choice_stays(
    http: tuple[httpx.AsyncClient, Catalog, LocalStore, str],
) -> None:
    client, _, store, uid = http
    own_model = store.uri(f"loras/alice/{uid}/v1/model.safetensors")
    done = await client.post(PROMOTE.format(uid=uid, version=1), json={"step": 500}, headers=auth("alice"))
    assert done.status_code == 200, done.text
    made = done.json()
    chosen = store.uri(f"loras/alice/{uid}/v1/checkpoints/step-000500.safetensors")
    assert (made["promotion"], made["step"], made["modelUri"], made["by"]) == (1, 500, chosen, "alice")
    assert (made["automaticStep"], made["automaticModelUri"]) == (750, own_model)
    kept = json.loads(store.get_bytes(f"loras/alice/{uid}/v1/promotions/p1.json"))
    assert kept["step"] == 500 and kept["automaticStep"] == 750

    record = (await client.get(f"/api/jobs/{uid}", headers=auth("alice"))).json()
    version = record["versions"][0]
    assert version["modelUri"] == chosen and version["promotion"]["step"] == 500
    assert version["likeness"]["chosenStep"] == 750  # the automatic choice, as the run made it
    resolved = resolve_locally(USES, "default", store).loras[0]
    assert resolved.uri == chosen  # the next local run's loraRef uses the person's choice

    # back to the automatic choice: a second promotion; the first stays as it was
    back = await client.post(PROMOTE.format(uid=uid, version=1), json={"step": 750}, headers=auth("ops"))
    assert back.status_code == 200 and back.json()["promotion"] == 2 and back.json()["by"] == "ops"
    assert json.loads(store.get_bytes(f"loras/alice/{uid}/v1/promotions/p1.json")) == kept
    assert resolve_locally(USES, "default", store).loras[0].uri.endswith("step-000750.safetensors")


@pytest.mark.asyncio
async def test_refusals_name_what_is_wrong(http: tuple[httpx.AsyncClient, Catalog, LocalStore, str]) -> None:
    client, _, store, uid = http
    unscored = await client.post(
        PROMOTE.format(uid=uid, version=1), json={"step": 400}, headers=auth("alice")
    )
    assert unscored.status_code == 400
    error = unscored.json()["error"]
    assert error["code"] == "invalid" and error["fields"][0]["field"] == "step"
    assert "scored: 250, 500, 750, 1000" in error["message"]
    missing = await client.post(PROMOTE.format(uid=uid, version=9), json={"step": 500}, headers=auth("alice"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "version_not_found"
    other = await client.post(PROMOTE.format(uid=uid, version=1), json={"step": 500}, headers=auth("bob"))
    assert other.status_code == 404  # not visible to bob
    bad = await client.post(PROMOTE.format(uid=uid, version=1), json={"step": 0}, headers=auth("alice"))
    assert bad.status_code == 400
    assert not list(store.list(f"loras/alice/{uid}/v1/promotions/"))


@pytest.mark.asyncio
async def test_an_api_that_does_not_create_does_not_promote(
    trained: tuple[Catalog, LocalStore, str],
    tokens_file: Path,
) -> None:
    catalog, store, uid = trained
    with_curve(catalog, store, uid)
    answers = Answers(
        create_app(score_settings(store, tokens_file, "off"), catalog=catalog, store=lambda: store)
    )
    async with score_client(answers) as client:
        refused = await client.post(
            PROMOTE.format(uid=uid, version=1), json={"step": 500}, headers=auth("alice")
        )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "create_disabled"
    assert not list(store.list(f"loras/alice/{uid}/v1/promotions/"))
    assert answers.undocumented() == []
