"""POST /api/assets/REF/versions/N/evaluate on a laptop's API (`contentgen api --local --offline`):
a dry run with the estimate, an evaluation recorded in the version's likeness history (the
earlier one kept), the fields named in refusals, and 403 create_disabled where the API does not
create. Every status answered is one the OpenAPI document lists for it (documented.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from contentgen.catalog import Catalog
from contentgen.httpapi import create_app
from contentgen.httpapi.creators import LocalCreator
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore
from tests.harness.cli import offline_lora
from tests.harness.creators import laptop_settings
from tests.httpapi.documented import Answers

LOCAL = {"Host": "localhost:8080"}


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Catalog, LocalStore, str]]:
    """An offline LoRA of the sample video, trained by `contentgen run` with its evaluation on."""
    yield from offline_lora(tmp_path, monkeypatch, lambda spec: None)


def _client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://localhost:8080", headers=LOCAL)


@pytest_asyncio.fixture
async def http(
    trained: tuple[Catalog, LocalStore, str], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    catalog, store, uid = trained
    creator = LocalCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "work")
    )
    answers = Answers(
        create_app(laptop_settings(store, "local"), catalog=catalog, store=lambda: store, creator=creator)
    )
    async with _client(answers) as client:
        yield client, uid
    creator.close()
    assert answers.undocumented() == []


@pytest.mark.asyncio
async def test_a_dry_run_then_an_evaluation_kept_beside_the_earlier_one(
    http: tuple[httpx.AsyncClient, str],
) -> None:
    client, uid = http
    path = f"/api/assets/{uid}/versions/1/evaluate"
    dry = await client.post(path, json={"seeds": [5]})
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    # the API runs --offline: the offline provider, whatever trained it; the baseline of seed 5 is new
    assert (plan["dryRun"], plan["provider"], plan["seeds"], plan["baselineCached"]) == (
        True,
        "offline",
        [5],
        False,
    )
    assert plan["evaluation"] == 0 and plan["likeness"] is None

    done = await client.post(path + "?confirm=true", json={"seeds": [5]})
    assert done.status_code == 201, done.text
    made = done.json()
    assert (made["evaluation"], made["ran"], made["recorded"]) == (1, True, True)
    # the offline pictures carry the subject's face (providers/offline_subject.py), scored as drawn
    assert made["likeness"]["verdict"] == "good" and made["likeness"]["seeds"] == [5]

    record = (await client.get(f"/api/jobs/{uid}")).json()
    version = record["versions"][0]
    # the run's own report stays the version's verdict; the re-evaluation is in its history
    assert version["likenessEvaluation"] == 0 and version["likeness"]["seeds"] == [1, 2]
    assert version["likenessChoice"]["how"] == "run"
    [again_first] = version["likenessHistory"]
    assert again_first["evaluation"] == 1 and again_first["likeness"]["seeds"] == [5]
    assert again_first["by"] == "api" and again_first["provider"] == "offline"

    again = await client.post(path + "?confirm=true")
    assert again.status_code == 201 and again.json()["evaluation"] == 2
    history = (await client.get(f"/api/jobs/{uid}")).json()["versions"][0]["likenessHistory"]
    assert [h["evaluation"] for h in history] == [1, 2]


@pytest.mark.asyncio
async def test_refusals_name_the_field(http: tuple[httpx.AsyncClient, str]) -> None:
    client, uid = http
    bad = await client.post(f"/api/assets/{uid}/versions/1/evaluate", json={"seeds": [1, 1]})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("seeds: ")
    unknown = await client.post(f"/api/assets/{uid}/versions/1/evaluate", json={"promptSet": "likeness-v9"})
    assert unknown.status_code == 400 and "promptSet" in unknown.text
    missing = await client.post(f"/api/assets/{uid}/versions/9/evaluate")
    assert missing.status_code == 404 and "no usable version 9" in missing.json()["error"]["message"]


@pytest.mark.asyncio
async def test_an_api_that_does_not_create_pays_for_nothing(trained: tuple[Catalog, LocalStore, str]) -> None:
    catalog, store, uid = trained
    answers = Answers(
        create_app(laptop_settings(store, "off"), catalog=catalog, store=lambda: store, creator=None)
    )
    async with _client(answers) as client:
        dry = await client.post(f"/api/assets/{uid}/versions/1/evaluate")
        assert dry.status_code == 200  # what it would cost is still said
        paid = await client.post(f"/api/assets/{uid}/versions/1/evaluate?confirm=true")
    assert paid.status_code == 403 and paid.json()["error"]["code"] == "create_disabled"
    assert answers.undocumented() == []
    assert not list(store.list(f"loras/demo-user/{uid}/v1/likeness/e"))
